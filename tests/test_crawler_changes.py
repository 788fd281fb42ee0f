"""Change tracking in the state DB: versions, removed and reopened hits, added/changed/gone."""

from __future__ import annotations

import hashlib

import pytest

from crawler.items import PageItem
from crawler.store.change_report import diff_passages, list_changes, passages, summarize
from crawler.store import elastic_queue as queue
from crawler.store.changes import mark_gone
from crawler.store.db import StateDB
from crawler.store.models import Hit, Page, PageVersion
from crawler.store.pages import save_pages
from crawler.store.runs import start_run

CLAIMS = {
    "保本保息": ("guaranteed_return", "gr.baoben"),
    "本金无忧": ("guaranteed_return", "gr.baoben"),  # the same promise in other words
    "年化收益18%": ("high_yield", "hy.annual"),
    "资金池": ("fund_pool", "fp.pool"),
}


def verdict_for(text: str) -> dict:
    """A synthetic Verdict.to_dict(): one finding per known claim in the text."""
    findings = [
        {"category": cat, "rule_id": rule, "text": claim, "start": text.index(claim),
         "end": text.index(claim) + len(claim), "field": "text", "snippet": claim,
         "weight": 1.0, "negated": False, "negated_by": None}
        for claim, (cat, rule) in CLAIMS.items() if claim in text
    ]
    labels = sorted({f["category"] for f in findings})
    return {"labels": labels, "score": 0.9 if labels else 0.0, "risk": "high" if labels else "none",
            "findings": findings, "yields": [], "context": "advertisement"}


def item(url: str, text: str, when: str, known: dict | None = None) -> PageItem:
    body = f"<html><body><p>{text}</p></body></html>".encode()
    sha = hashlib.sha256(body).hexdigest()
    it = PageItem(target_id="site", url=url, final_url=url, status=200, headers={}, body=body,
                  encoding="utf-8", fetched_at=when, sha256=sha)
    if known is not None and known.get(url) == sha:
        it.unchanged = True  # what the analyse pipeline does for an unchanged body
        return it
    it.title, it.text = "页", text
    it.text_fingerprint = hashlib.sha256(text.encode()).hexdigest()
    it.verdict = verdict_for(text)
    return it


class Site:
    """Patrol a dict of url → text through save_pages, as the pipelines do.

    A stored page missing from the dict was deleted: the patrol found it answered 404
    (as the spider reports it to the store), unless ``gone`` is False.
    """

    def __init__(self, db: StateDB):
        self.db = db
        self.known: dict[str, str] = {}

    def patrol(self, pages: dict[str, str], when: str, gone: bool = True) -> int:
        run_id = start_run(self.db, "test")
        saved = save_pages(self.db, [item(u, t, when, self.known) for u, t in pages.items()], run_id)
        deleted = [url for url in self.known if url not in pages]
        with self.db.new_session() as session:
            self.known = {p.url: p.sha256 for p in session.query(Page)}
        if gone:
            mark_gone(self.db, run_id, {"site": deleted})
        return run_id, saved


@pytest.fixture
def db(tmp_path):
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


def hits_by_labels(db) -> dict[tuple, Hit]:
    """(path, labels) → hit."""
    with db.new_session() as session:
        return {(h.url.rsplit("/", 1)[1], *h.labels): h for h in session.query(Hit)}


def test_claim_removed_added_and_page_deleted_between_two_patrols(db):
    site = Site(db)
    first = {
        "http://s/a": "平台承诺保本保息。年化收益18%，欢迎投资。",
        "http://s/b": "关于我们：公司成立于2015年。",
        "http://s/c": "活期理财，资金池运作。",
    }
    run1, saved1 = site.patrol(first, "2026-11-01T02:00:00+00:00")
    assert [s.change for s in saved1] == ["added", "added", "added"]
    hits1 = hits_by_labels(db)
    a_hit = hits1[("a", "guaranteed_return", "high_yield")]

    second = {
        "http://s/a": "平台承诺保本保息。欢迎投资。",            # the 18% claim removed
        "http://s/b": "关于我们：公司成立于2015年。资金池管理。",  # a claim added
    }                                                          # /c deleted
    run2, saved2 = site.patrol(second, "2026-11-08T02:00:00+00:00")
    assert [s.change for s in saved2] == ["changed", "changed"]

    changes = list_changes(db, run_id=run2)
    assert summarize(changes) == {(run2, "site"): {"added": 0, "changed": 2, "gone": 1}}
    by_url = {c["url"]: c for c in changes}
    a = by_url["http://s/a"]
    assert a["removed_passages"] == ["年化收益18%，欢迎投资。"]
    assert a["added_passages"] == ["欢迎投资。"]
    assert "-年化收益18%，欢迎投资。" in a["diff"]
    assert a["claims_removed"] == [{"category": "high_yield", "rule_id": "hy.annual", "text": "年化收益18%"}]
    assert a["hits"]["removed"]["id"] == a_hit.id
    assert a["hits"]["opened"]["labels"] == ["guaranteed_return"]
    b = by_url["http://s/b"]
    assert b["added_passages"] == ["资金池管理。"] and b["removed_passages"] == []
    assert b["claims_added"][0]["rule_id"] == "fp.pool" and b["hits"]["removed"] is None
    c = by_url["http://s/c"]
    assert c["kind"] == "gone" and c["hits"]["removed"]["labels"] == ["fund_pool"]

    hits2 = hits_by_labels(db)
    assert hits2[("a", "guaranteed_return", "high_yield")].removed_at is not None  # rectified
    assert hits2[("c", "fund_pool")].removed_run_id == run2
    assert hits2[("a", "guaranteed_return")].removed_at is None
    assert hits2[("b", "fund_pool")].removed_at is None
    with db.new_session() as session:
        gone = session.query(Page).filter(Page.url == "http://s/c").one()
        assert gone.gone_run_id == run2
        assert session.query(PageVersion).filter(PageVersion.page_id == gone.id).count() == 1

    # Third patrol: the deleted page is back unchanged and /a says 18% again: both reopen.
    third = {"http://s/a": first["http://s/a"], "http://s/b": second["http://s/b"], "http://s/c": first["http://s/c"]}
    run3, saved3 = site.patrol(third, "2026-11-15T02:00:00+00:00")
    assert [s.reopened for s in saved3] == [True, False, True]
    hits3 = hits_by_labels(db)
    assert hits3[("a", "guaranteed_return", "high_yield")].removed_at is None
    assert hits3[("a", "guaranteed_return", "high_yield")].reopened_at is not None
    assert hits3[("a", "guaranteed_return")].removed_run_id == run3
    kinds = {c["url"]: (c["kind"], c["hits"]["reopened"] is not None) for c in list_changes(db, run_id=run3)}
    assert kinds == {"http://s/a": ("changed", True), "http://s/c": ("added", True)}
    with db.new_session() as session:
        back = session.query(Page).filter(Page.url == "http://s/c").one()
        assert back.gone_at is None and back.gone_run_id is None, "a page that came back is no longer gone"


def test_unchanged_repatrol_records_no_change_and_keeps_one_version(db):
    site = Site(db)
    pages = {"http://s/a": "承诺保本保息。"}
    _, (first,) = site.patrol(pages, "2026-11-01T02:00:00+00:00")
    run2, saved = site.patrol(pages, "2026-11-02T02:00:00+00:00")
    assert saved[0].change is None and not saved[0].new_hit
    assert (saved[0].page_id, saved[0].hit_id) == (first.page_id, first.hit_id) and first.hit_id
    assert list_changes(db, run_id=run2) == []
    with db.new_session() as session:
        (version,) = session.query(PageVersion).all()
        assert version.last_run_id == run2 and version.first_run_id != run2
        page, hit = session.get(Page, first.page_id), session.get(Hit, first.hit_id)
        seen = {(o.last_run_id, o.last_seen.day) for o in (version, page, hit)} | {(run2, page.fetched_at.day)}
        assert seen == {(run2, 2)}, "the page, its version and its hit were seen by the second patrol"


def test_a_batch_mixing_unchanged_changed_and_new_pages_is_answered_in_order(db):
    site = Site(db)
    site.patrol({"http://s/a": "承诺保本保息。", "http://s/b": "公司介绍。"}, "2026-11-01T02:00:00+00:00")
    run2, saved = site.patrol({"http://s/b": "资金池运作。", "http://s/a": "承诺保本保息。", "http://s/c": "联系我们。"},
                              "2026-11-02T02:00:00+00:00")
    assert [s.change for s in saved] == ["changed", None, "added"]
    assert [s.new_hit for s in saved] == [True, False, False]
    with db.new_session() as session:
        urls = {page.id: page.url for page in session.query(Page)}
    assert [urls[s.page_id] for s in saved] == ["http://s/b", "http://s/a", "http://s/c"]


def test_since_and_target_filters(db):
    site = Site(db)
    site.patrol({"http://s/a": "一。"}, "2026-11-01T02:00:00+00:00", gone=False)
    site.patrol({"http://s/a": "二。"}, "2026-11-09T02:00:00+00:00", gone=False)
    from crawler.store.db import parse_time

    assert [c["kind"] for c in list_changes(db)] == ["added", "changed"]
    assert [c["kind"] for c in list_changes(db, since=parse_time("2026-11-05"))] == ["changed"]
    assert list_changes(db, targets=("other",)) == []


def test_only_pages_answered_404_or_410_are_gone_not_those_merely_not_fetched(db):
    site = Site(db)
    site.patrol({"http://s/a": "平台承诺保本保息。", "http://s/b": "资金池运作。", "http://s/c": "年化收益18%。"},
                "2026-11-01T02:00:00+00:00")
    run2 = start_run(db, "test")
    save_pages(db, [item("http://s/c", "年化收益18%。", "2026-11-08T02:00:00+00:00")], run2)
    # /a answered 404; /b was not reached; /c was answered 404 after being stored in this run
    # (not possible from one crawl, but stored this run means online); /x is no stored page;
    # "other" is another target that has no page at that URL.
    counts = mark_gone(db, run2, {"site": ["http://s/a", "http://s/c", "http://s/x"], "other": ["http://s/b"]})
    assert counts == {"site": 1}
    hits = hits_by_labels(db)
    assert hits[("a", "guaranteed_return")].removed_run_id == run2
    assert hits[("b", "fund_pool")].removed_at is None, "not reached is not deleted"
    assert hits[("c", "high_yield")].removed_at is None
    assert [(c["url"], c["kind"]) for c in list_changes(db, run_id=run2)] == [("http://s/a", "gone")]
    assert mark_gone(db, start_run(db, "test"), {"site": ["http://s/a"]}) == {}, "gone once, not again"


def test_passages_split_lines_and_sentences():
    assert passages("第一句。第二句！\n\n  第三行") == ["第一句。", "第二句！", "第三行"]
    removed, added, _ = diff_passages("甲。乙。丙。", "甲。丁。丙。")
    assert (removed, added) == (["乙。"], ["丁。"])


def test_a_page_twice_in_one_batch_is_stored_twice_in_order(db):
    run_id = start_run(db, "test")
    first = item("http://s/p.html", "本平台保本保息", "2026-11-27T02:00:00+00:00")
    second = item("http://s/p.html", "本平台资金池运作", "2026-11-27T02:00:05+00:00")
    saved = save_pages(db, [first, second], run_id)
    assert [s.change for s in saved] == ["added", "changed"]
    assert saved[0].hit_id != saved[1].hit_id and saved[0].new_hit and saved[1].new_hit
    with db.new_session() as session:
        assert [v.text for v in session.query(PageVersion).order_by(PageVersion.id)] == ["本平台保本保息", "本平台资金池运作"]
        hits = {h.id: h for h in session.query(Hit)}
        assert hits[saved[0].hit_id].removed_at is not None, "the second version superseded the first's claim"
        assert hits[saved[1].hit_id].removed_at is None


def test_a_reworded_claim_replaces_its_hit_while_a_removed_one_is_rectified(db):
    site = Site(db)
    first = {
        "http://s/a": "平台承诺保本保息。",
        "http://s/b": "资金池运作，保本保息。",
        "http://s/c": "年化收益18%。",
        "http://s/d": "平台承诺保本保息。",
    }
    site.patrol(first, "2026-11-01T02:00:00+00:00")
    before = hits_by_labels(db)
    second = {
        "http://s/a": "平台承诺本金无忧。",  # reworded: a new verdict key, the same rule broken
        "http://s/b": "资金池运作。",        # one claim dropped, the page still runs a fund pool
        "http://s/c": "联系我们。",          # the claim is gone: rectified
        "http://s/d": "资金池运作。",        # another rule broken instead: the old claim is rectified
    }
    run2, _ = site.patrol(second, "2026-11-08T02:00:00+00:00")
    after = hits_by_labels(db)
    with db.new_session() as session:
        hits = {h.id: h for h in session.query(Hit)}
    old = {path: hits[before[key].id] for path, key in (
        ("a", ("a", "guaranteed_return")), ("b", ("b", "fund_pool", "guaranteed_return")),
        ("c", ("c", "high_yield")), ("d", ("d", "guaranteed_return")))}
    assert all(h.removed_at is not None and h.removed_run_id == run2 for h in old.values())
    assert old["a"].replaced_by == after[("a", "guaranteed_return")].id != old["a"].id
    assert old["b"].replaced_by == after[("b", "fund_pool")].id
    assert old["c"].replaced_by is None and old["d"].replaced_by is None, "no successor sharing a category"

    removed = {c["url"].rsplit("/", 1)[1]: c["hits"]["removed"] for c in list_changes(db, run_id=run2)}
    assert {path: r["replaced_by"] for path, r in removed.items()} == {
        "a": old["a"].replaced_by, "b": old["b"].replaced_by, "c": None, "d": None}

    # Third patrol: /a says it in the first words again. The page never stopped promising it:
    # the first hit is back, not reopened (no 整改后复现), and the reworded one is replaced by it.
    # /e is new; it is reworded next, its rewording is rectified, and then its first words come back.
    later = {**second, "http://s/a": first["http://s/a"]}
    run3, saved3 = site.patrol(later | {"http://s/e": "本金无忧。"}, "2026-11-15T02:00:00+00:00")
    e_first = hits_by_labels(db)[("e", "guaranteed_return")]
    site.patrol(later | {"http://s/e": "保本保息。"}, "2026-11-16T02:00:00+00:00")
    site.patrol(later | {"http://s/e": "联系我们。"}, "2026-11-17T02:00:00+00:00")
    run6, saved6 = site.patrol(later | {"http://s/e": "本金无忧。"}, "2026-11-18T02:00:00+00:00")
    with db.new_session() as session:
        first_a, reworded_a = session.get(Hit, old["a"].id), session.get(Hit, old["a"].replaced_by)
        assert first_a.removed_at is None and first_a.replaced_by is None and first_a.reopened_at is None
        assert reworded_a.removed_run_id == run3 and reworded_a.replaced_by == first_a.id
        e_back = session.get(Hit, e_first.id)
        assert e_back.removed_at is None and e_back.reopened_at is not None, "its rewording was rectified: reopened"
    assert not any(s.reopened for s in saved3) and [s.reopened for s in saved6 if s.change] == [True]
    a3 = {c["url"]: c["hits"] for c in list_changes(db, run_id=run3)}["http://s/a"]
    assert a3["back"]["id"] == first_a.id and a3["reopened"] is None and a3["removed"]["replaced_by"] == first_a.id
    assert {c["url"]: c["hits"]["reopened"]["id"] for c in list_changes(db, run_id=run6)} == {"http://s/e": e_first.id}


def pending_docs(db) -> set[tuple[str, int]]:
    return {(kind, int(ref)) for kind, ref in db.execute("SELECT kind, ref FROM es_docs WHERE state = 'pending'")}


def test_search_documents_of_removed_reopened_and_gone_rows_are_queued_again(db):
    site = Site(db)
    first = {"http://s/a": "平台承诺保本保息。", "http://s/b": "年化收益18%。", "http://s/c": "资金池运作。"}
    site.patrol(first, "2026-11-01T02:00:00+00:00")
    assert pending_docs(db) == set(), "a state DB no cluster has seen gets no queue"
    queue.enqueue_all(db)
    db.execute("UPDATE es_docs SET state = 'indexed'")
    old = {key[0]: hit.id for key, hit in hits_by_labels(db).items()}
    with db.new_session() as session:
        page_c = session.query(Page).filter(Page.url == "http://s/c").one().id

    # /a reworded, /b rectified, /c deleted: the documents showing them live are pending again.
    site.patrol({"http://s/a": "平台承诺本金无忧。", "http://s/b": "联系我们。"}, "2026-11-08T02:00:00+00:00")
    assert pending_docs(db) == {("hit", old["a"]), ("hit", old["b"]), ("hit", old["c"]), ("page", page_c)}

    # All back: reopened hits and a page no longer gone; the reworded hit was never queued, so stays out.
    db.execute("UPDATE es_docs SET state = 'indexed'")
    site.patrol(first, "2026-11-15T02:00:00+00:00")
    assert pending_docs(db) == {("hit", old["a"]), ("hit", old["b"]), ("hit", old["c"]), ("page", page_c)}


def test_an_older_state_db_learns_which_removed_hits_were_reworded(db, tmp_path):
    site = Site(db)
    site.patrol({"http://s/a": "平台承诺保本保息。", "http://s/c": "年化收益18%。"}, "2026-11-01T02:00:00+00:00")
    site.patrol({"http://s/a": "平台承诺本金无忧。", "http://s/c": "联系我们。"}, "2026-11-08T02:00:00+00:00")
    with db.new_session() as session:
        expected = {h.id: h.replaced_by for h in session.query(Hit)}
    first_a, c, reworded_a = sorted(expected)
    assert expected == {first_a: reworded_a, c: None, reworded_a: None}
    queue.enqueue_all(db)
    db.execute("UPDATE es_docs SET state = 'indexed'")
    db.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "state.db") as conn:  # a finpatrol that did not record replaced_by
        conn.execute("DROP INDEX ix_hits_replaced_by")
        conn.execute("ALTER TABLE hits DROP COLUMN replaced_by")
    upgraded = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with upgraded.new_session() as session:
            assert {h.id: h.replaced_by for h in session.query(Hit)} == expected
        assert pending_docs(upgraded) == {("hit", first_a)}, "the backfilled hit's document is sent again"
    finally:
        upgraded.close()


def test_a_claim_negated_or_gone_while_the_rules_changed_is_the_sites_doing_not_the_rules():
    """On a page whose text changes anyway (a counter), the rules are credited only with what the words do not explain."""
    from crawler.store.changes import Before, judged_by_rules

    def finding(text, negated=False):
        return {"category": "guaranteed_return", "rule_id": "gr.x", "text": text, "negated": negated}

    before = Before(exists=True, fingerprint="f1", title="t", hit_id=1, verdict_by="rules-1")
    old_hit = Hit(findings=[finding("保本保息")])
    old_text = "t\n本平台承诺保本保息。阅读 100 次"

    def judged(new_text, new_findings):
        return judged_by_rules(before, "rules-2", True, old_text, new_text, old_hit, {"findings": new_findings})

    assert judged("t\n本平台承诺保本保息。阅读 101 次", []), "the words stayed: the new rules withdrew it"
    assert not judged("t\n本平台不承诺保本保息。阅读 101 次", [finding("保本保息", negated=True)]), "negated: rectified"
    assert not judged("t\n市场有风险。阅读 101 次", []), "taken down: rectified"
    assert not judged("t\n本平台承诺保本保息，稳赚不赔。阅读 101 次", [finding("保本保息"), finding("稳赚不赔")]), \
        "a claim added with the rules: the page changed too"
    assert not judged_by_rules(before, "rules-1", True, old_text, "t\n市场有风险", old_hit, {}), "same rules"
