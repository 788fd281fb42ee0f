"""The newest capture of each hit: the evidence pipeline's ``evidence`` table, read without its models.

The store may not import ``crawler.evidence`` (that package builds on the store), so the
table is read by name. A capture names where the hit's claim was seen: its ``final_url``
stays the page the claim was on after the URL has come to redirect elsewhere, which the
page's own row, rewritten by every fetch, does not.
"""

from __future__ import annotations

from crawler.store.db import in_chunks


def stored_evidence(db, hit_ids) -> dict[int, dict]:
    """The latest WARC evidence of each hit (``evidence`` table of the evidence pipeline), by hit id."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    ids = sorted({int(i) for i in hit_ids})
    out: dict[int, dict] = {}
    for chunk in in_chunks(ids):
        marks = ", ".join(f":h{n}" for n in range(len(chunk)))
        try:
            rows = db.execute(  # the newest capture only: a claim captured daily has hundreds
                "SELECT hit_id, warc_file, record_id, payload_sha256, screenshot_record_id, final_url FROM evidence"
                f" WHERE id IN (SELECT max(id) FROM evidence WHERE hit_id IN ({marks}) GROUP BY hit_id)",
                **{f"h{n}": v for n, v in enumerate(chunk)})
        except (OperationalError, ProgrammingError):  # no evidence table: evidence not configured
            return {}
        for hit_id, warc_file, record_id, sha256, screenshot, final_url in rows:
            out[hit_id] = {"warc_file": warc_file, "warc_record_id": record_id, "sha256": sha256,
                           "screenshot": screenshot, "final_url": final_url}
    return out
