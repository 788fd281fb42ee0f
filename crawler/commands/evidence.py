"""``finpatrol evidence verify`` and ``finpatrol evidence export``: the WARC evidence of hits."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from crawler.commands.common import (
    ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, office_time, open_db, time_value,
    writing,
)
from crawler.evidence.archive import evidence_root
from crawler.evidence.export import ExportError, export_hit
from crawler.evidence.handover import MANIFEST, SUMS, check_export, sha256_file
from crawler.evidence.verify import verify


@click.group()
def evidence():
    """Evidence of hits in WARC files under state_dir/evidence/."""


@evidence.command("verify")
@config_option
@json_option
@click.option("--since", callback=time_value, metavar="DATE",
              help="Only captures fetched from this time on (a date: its start in alerts.timezone).")
def verify_command(config_file, as_json, since):
    """Recompute every digest; report changed or missing files; exit 1 on any problem."""
    config = load_or_exit(config_file)
    with open_db(config) as db:
        report = verify(db, evidence_root(config.state_dir), office_time(since, config))
    if as_json:
        emit_json([{"captures": report.captures, "files": report.files, "ok": report.ok,
                    "problems": [p.as_dict() for p in report.problems]}])
    else:
        for problem in report.problems:
            console.print(f"[bold red]FAIL[/] {escape(str(problem))}")
        verdict = "[green]OK[/]" if report.ok else f"[bold red]{len(report.problems)} problem(s)[/]"
        console.print(f"{report.captures} capture(s) in {report.files} file(s): {verdict}")
    if not report.ok:
        raise SystemExit(1)


@evidence.command("export")
@click.argument("hit_id", type=ROW_COUNT)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@config_option
@click.option("--latest", is_flag=True, help="Export the latest capture instead of the first.")
def export_command(hit_id, directory, config_file, latest):
    """Write a hit's page bytes, screenshot, headers, manifest.json and SHA256SUMS into DIRECTORY
    (new or empty); print every file's SHA-256, manifest.json's last: the hand-over receipt.

    Exits 1 when the WARC file holding the capture fails the SHA-256 recorded at its close: the
    hit's records verified and are written, but manifest.json says verified: false."""
    config = load_or_exit(config_file)
    db = open_db(config)
    try:
        with writing(directory):
            manifest = export_hit(db, evidence_root(config.state_dir), hit_id, directory,
                                  "latest" if latest else "first")
    except ExportError as e:
        for problem in e.problems:
            console.print(f"[bold red]FAIL[/] {escape(str(problem))}")
        raise click.ClickException(str(e)) from None
    finally:
        db.close()
    for name, entry in manifest["files"].items():
        console.print(f"{entry['sha256']}  {escape(str(directory / name))}")
    receipt = sha256_file(directory / MANIFEST)
    console.print(f"{receipt}  {escape(str(directory / MANIFEST))}")
    console.print(f"{escape(str(directory / MANIFEST))}: hit {hit_id}, fetched "
                  f"{manifest['fetched_at']['asia_shanghai']} (Asia/Shanghai). Its SHA-256 (above) is the "
                  f"hand-over receipt: re-check the folder later with `finpatrol evidence verify-export "
                  f"{escape(str(directory))} --receipt {receipt}`, or `sha256sum -c {SUMS}` in it.", soft_wrap=True)
    if manifest["file_verified"] is False:
        _file_failed(hit_id, manifest)


@evidence.command("verify-export")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--receipt", metavar="SHA256", help="The manifest.json SHA-256 printed when the folder was exported.")
@json_option
def verify_export_command(directory, receipt, as_json):
    """Re-check an exported folder: every file against SHA256SUMS and manifest.json, no file
    missing or added, the WARC records' digests; exit 1 naming what changed. Needs no state DB."""
    check = check_export(directory, receipt)
    if as_json:
        emit_json([{"folder": str(directory), "manifest_sha256": check.manifest_sha256, "files": check.files,
                    "ok": check.ok, "problems": check.problems}])
    else:
        for problem in check.problems:
            console.print(f"[bold red]FAIL[/] {escape(problem)}", soft_wrap=True)
        verdict = "[green]OK[/]" if check.ok else f"[bold red]{len(check.problems)} problem(s)[/]"
        console.print(f"{escape(str(directory))}: {check.files} file(s), manifest.json SHA-256 "
                      f"{check.manifest_sha256 or '-'}: {verdict}", soft_wrap=True)
    if not check.ok:
        raise SystemExit(1)


def _file_failed(hit_id: int, manifest: dict) -> None:
    """The hit's records verified, but the WARC file they are in no longer hashes as it did when closed."""
    warc = manifest["warc"]["file"]
    for what in manifest["file_problems"]:
        click.echo(f"FAIL file: {warc}: {what}", err=True)
    click.echo(f"Warning: hit {hit_id}'s own WARC records verified and were exported, but the file holding them, "
               f"{warc}, fails the check recorded when it was closed: something else in it changed. "
               "manifest.json says verified: false (records_verified: true, file_verified: false); "
               "run `finpatrol evidence verify` before handing this export over.", err=True)
    raise SystemExit(1)


COMMANDS = (evidence,)
