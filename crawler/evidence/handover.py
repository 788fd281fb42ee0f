"""A handed-over export folder that can be re-checked later, by finpatrol or with coreutils alone.

``write_sums`` puts ``SHA256SUMS`` beside the exported files (the format of ``sha256sum``, so
``sha256sum -c SHA256SUMS`` checks the folder anywhere). The SHA-256 of ``manifest.json``,
printed at export, is the hand-over receipt: the manifest names every file's SHA-256, so a
folder whose manifest still has the receipt's hash has every file as exported.
``check_export`` (``finpatrol evidence verify-export DIR``) re-checks a folder: every file
against ``SHA256SUMS`` and the manifest, no file missing or added, the WARC records' block and
payload digests, the page record against the manifest's ``page_sha256``, and optionally the
manifest against the receipt. No state DB is needed: the folder may be on another machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_sums(folder: Path) -> None:
    """Write ``SHA256SUMS`` for every file in ``folder`` (``manifest.json`` included)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS)
    lines = "".join(f"{sha256_file(folder / name)}  {name}\n" for name in names)
    (folder / SUMS).write_text(lines, encoding="utf-8")


@dataclass
class ExportCheck:
    folder: Path
    manifest_sha256: str | None = None
    files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_export(folder: Path, receipt: str | None = None) -> ExportCheck:
    """Re-check an exported folder; every problem names the file and what differs."""
    check = ExportCheck(folder)
    sums = _read_sums(folder, check.problems)
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS}
    for name in sorted(present - set(sums)):
        check.problems.append(f"{name}: not listed in {SUMS} (added or renamed after export)")
    actual = {}
    for name, expected in sums.items():
        if name not in present:
            check.problems.append(f"{name}: missing")
            continue
        actual[name] = sha256_file(folder / name)
        check.files += 1
        if actual[name] != expected:
            check.problems.append(f"{name}: SHA-256 differs from {SUMS} (changed after export)")
    check.manifest_sha256 = actual.get(MANIFEST)
    if receipt and check.manifest_sha256 and check.manifest_sha256 != receipt.lower():
        check.problems.append(f"{MANIFEST}: SHA-256 {check.manifest_sha256} differs from the receipt {receipt}")
    manifest = _read_manifest(folder, check.problems) if MANIFEST in actual else None
    if manifest is not None:
        _check_against_manifest(folder, manifest, actual, check.problems)
    logger.info("checked export %s: %d files, %d problems", folder, check.files, len(check.problems))
    return check


def _read_sums(folder: Path, problems: list[str]) -> dict[str, str]:
    path = folder / SUMS
    if not path.is_file():
        problems.append(f"{SUMS}: missing (was this folder made by `finpatrol evidence export`?)")
        return {}
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        match = SUM_LINE.match(line)
        if match is None or "/" in match[2]:
            problems.append(f"{SUMS}: line {number} is not '<sha256>  <file name>'")
            continue
        sums[match[2]] = match[1]
    return sums


def _read_manifest(folder: Path, problems: list[str]) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except ValueError as e:
        problems.append(f"{MANIFEST}: not valid JSON ({e})")
        return None
    return manifest if isinstance(manifest, dict) else None


def _check_against_manifest(folder: Path, manifest: dict, actual: dict[str, str], problems: list[str]) -> None:
    """Files against the manifest's SHA-256s, and the WARC records against their digests and the page's."""
    for name, entry in (manifest.get("files") or {}).items():
        if name in actual and actual[name] != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the one manifest.json names")
    pages = {manifest.get("warc", {}).get("record_id"): manifest.get("page_sha256")}
    removed = manifest.get("hit_removal") or {}
    shown = removed.get("removal_capture") or removed.get("gone_capture") or {}  # gone_capture: older exports
    if shown.get("exported_as"):
        pages[shown.get("record_id")] = shown.get("page_sha256")
    for name in sorted(n for n in actual if n.endswith(".warc.gz")):
        _check_warc(folder / name, pages, problems)


def _check_warc(path: Path, pages: dict, problems: list[str]) -> None:
    try:
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, check_digests=True):
                record_id = record.rec_headers.get_header("WARC-Record-ID")
                payload = record.raw_stream.read()
                record.raw_stream.read()  # reach the end so the block digest is checked
                for problem in record.digest_checker.problems:
                    problems.append(f"{path.name}: record {record_id}: WARC {problem}")
                expected = pages.get(record_id)
                if expected and hashlib.sha256(payload).hexdigest() != expected:
                    problems.append(f"{path.name}: record {record_id}: page bytes differ from the manifest's SHA-256")
    except Exception as e:  # a corrupt file can fail in zlib or warcio
        problems.append(f"{path.name}: unreadable: {type(e).__name__}: {' '.join(str(e).split())[:120]}")
