"""Read change records back as plain dicts with the changed passages: ``finpatrol changes``.

A passage is a line of the extracted text, split further after 。！？；!? so that
one edited sentence in a long paragraph shows as one removed and one added passage.
"""

from __future__ import annotations

import difflib
import logging
import re
from datetime import datetime

from sqlalchemy import select

from crawler.store.changes import supersedes, taken_down
from crawler.store.db import StateDB, as_utc, iso
from crawler.store.models import Hit, PageChange, PageVersion

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[。！？；!?])")


def passages(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        out.extend(p.strip() for p in _SENTENCE_END.split(line) if p.strip())
    return out


def diff_passages(old: str, new: str) -> tuple[list[str], list[str], list[str]]:
    """(removed passages, added passages, unified diff lines) between two texts."""
    a, b = passages(old), passages(new)
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(a[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(b[j1:j2])
    diff = [line.rstrip("\n") for line in difflib.unified_diff(a, b, "before", "after", n=1, lineterm="")]
    return removed, added, diff


def _hit_brief(hit: Hit | None) -> dict | None:
    if hit is None:
        return None
    return {
        "id": hit.id,
        "labels": list(hit.labels),
        "rule_ids": sorted({f["rule_id"] for f in hit.findings if not f.get("negated")}),
        "removed_at": iso(hit.removed_at),
        "reopened_at": iso(hit.reopened_at),
    }


def _claims(hit: Hit | None) -> set[tuple[str, str, str]]:
    """(category, rule id, words) of the hit's live findings in the categories it was labelled with;
    a finding of another category (``ub.weak`` alone) is evidence below that category's threshold,
    kept in the hit's ``rule_ids`` and verdict key, but no claim the page makes."""
    if hit is None:
        return set()
    return {(f["category"], f["rule_id"], f["text"]) for f in hit.findings
            if not f.get("negated") and f["category"] in hit.labels}


def changed_claims(hit: Hit | None, other: Hit | None, passages: list[str], other_text: str) -> list[dict]:
    """The claims of ``hit`` that ``other`` does not make and whose words this change wrote or
    deleted: they are in one of ``passages`` (the ones it added to ``hit``'s text, or removed from
    it), or not in ``other_text`` at all. A claim in a sentence that stayed as it was is no claim
    the page made or dropped, though the verdict reads it differently now (a cue nearby was
    edited, or the rules changed)."""
    return [dict(zip(("category", "rule_id", "text"), claim)) for claim in sorted(_claims(hit) - _claims(other))
            if claim[2] not in other_text or any(claim[2] in passage for passage in passages)]


def change_dict(session, change: PageChange) -> dict:
    old_v = session.get(PageVersion, change.old_version_id) if change.old_version_id else None
    new_v = session.get(PageVersion, change.new_version_id) if change.new_version_id else None
    old_hit = session.get(Hit, change.old_hit_id) if change.old_hit_id else None
    new_hit = session.get(Hit, change.new_hit_id) if change.new_hit_id else None
    old_text = f"{old_v.title}\n{old_v.text}" if old_v else ""
    new_text = f"{new_v.title}\n{new_v.text}" if new_v else ""
    removed, added, diff = diff_passages(old_text, new_text)
    claims_removed = changed_claims(old_hit, new_hit, removed, new_text)
    claims_added = changed_claims(new_hit, old_hit, added, old_text)
    if change.kind == "added" and old_v is None:  # a new page: its whole text, not a diff
        removed, added, diff = [], [], []
    hits = {"removed": None, "opened": None, "reopened": None, "back": None}
    by_rules = bool(change.by_rules)  # the verdict changed with the rules; the claims' words stayed
    if change.by_rules is None and old_hit is not None:  # recorded before by_rules was: one version, hit withdrawn
        by_rules = bool(old_hit.reclassified) and change.old_version_id == change.new_version_id
    if old_hit is not None and (change.kind == "gone" or old_hit.id != (new_hit.id if new_hit else None)):
        # replaced_by: the hit that superseded it in this change (reworded), None when the change rectified it;
        # reclassified: withdrawn or judged again by other rules, not rectified
        replaced = change.kind == "changed" and new_hit is not None and supersedes(new_hit.labels, old_hit.labels)
        hits["removed"] = _hit_brief(old_hit) | {
            "replaced_by": new_hit.id if replaced else None, "reclassified": by_rules,
            # a collapse or 维权 notice removed (or its page): taken down, not rectified
            "taken_down": not replaced and not by_rules and taken_down(old_hit.labels)}
    if new_hit is not None and (old_hit is None or new_hit.id != old_hit.id or change.kind == "added"):
        # a hit of the new rules dates from its words (first_seen), but this change opened it
        first = new_hit.first_run_id == change.run_id and (by_rules or as_utc(new_hit.first_seen) == as_utc(change.at))
        # back, not reopened: the page had kept saying it in other words, or the rules changed back
        reopened = change.reopened if change.reopened is not None else not by_rules  # None: recorded before
        hits["opened" if first else "reopened" if reopened else "back"] = _hit_brief(new_hit)
    return {
        "id": change.id,
        "run": change.run_id,
        "target": change.target_id,
        "page_id": change.page_id,
        "url": change.url,
        "kind": change.kind,
        "at": iso(change.at),
        "title": (new_v or old_v).title if (new_v or old_v) else "",
        "removed_passages": removed,
        "added_passages": added,
        "diff": diff,
        "claims_removed": claims_removed,
        "claims_added": claims_added,
        "hits": hits,
        "by_rules": by_rules,
    }


def list_changes(
    db: StateDB,
    targets: tuple[str, ...] = (),
    since: datetime | None = None,
    run_id: int | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Change records in the order they were recorded, with passages and hits."""
    query = select(PageChange).order_by(PageChange.id)
    if targets:
        query = query.where(PageChange.target_id.in_(targets))
    if since is not None:  # as ids from the index on ``at``: SQLite would rather read every change in id order
        query = query.where(PageChange.id.in_(select(PageChange.id).where(PageChange.at >= since)))
    if run_id is not None:
        query = query.where(PageChange.run_id == run_id)
    if limit:
        query = query.limit(limit)
    with db.new_session() as session:
        return [change_dict(session, c) for c in session.scalars(query)]


def summarize(changes: list[dict]) -> dict[tuple[int | None, str], dict[str, int]]:
    """(run, target) → {"added": n, "changed": n, "gone": n}."""
    out: dict[tuple[int | None, str], dict[str, int]] = {}
    for change in changes:
        counts = out.setdefault((change["run"], change["target"]), {"added": 0, "changed": 0, "gone": 0})
        counts[change["kind"]] += 1
    return out
