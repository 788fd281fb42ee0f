"""State DB: upgrades of older databases, what re-patrols read and write, index rebuilds."""

import sqlite3


from crawler.store.db import StateDB


def test_db_from_an_older_version_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    StateDB(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:  # an older finpatrol had no gone_at column
        conn.execute("ALTER TABLE pages DROP COLUMN gone_at")
        assert "gone_at" not in {row[1] for row in conn.execute("PRAGMA table_info(pages)")}
    db = StateDB(f"sqlite:///{path}")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(pages)")}
        assert "gone_at" in columns
        db.execute("SELECT gone_at FROM pages")
    finally:
        db.close()


STAMP = "0123456789abcdef"
"""The ``verdict_stamp`` the pages of ``_page_item`` were classified with."""


def _page_item(url: str, *, status: int = 200, etag: str | None = '"v1"', links: str | None = "http://s/\n/a",
               rendered: bool = False, unchanged: bool = False, verdict_by: str = STAMP):
    from crawler.items import PageItem

    headers = {"etag": etag} if etag else {}
    item = PageItem(target_id="site", url=url, final_url=url, status=status, headers=headers,
                    body=b"" if status == 304 else b"<p>x</p>", encoding="utf-8",
                    fetched_at="2026-11-27T02:00:00+00:00", rendered=rendered, links=links)
    item.unchanged = unchanged
    if not unchanged:
        item.title, item.text, item.text_fingerprint, item.sha256 = "t", "x", "f", "s"
        item.verdict_by = verdict_by
    return item


def test_only_pages_fetched_plainly_with_validators_and_links_are_asked_conditionally(tmp_path):
    from crawler.store.pages import Revalidation, revalidations, save_pages

    with StateDB(f"sqlite:///{tmp_path / 'state.db'}") as db:
        save_pages(db, [
            _page_item("http://s/plain"),
            _page_item("http://s/rendered", rendered=True),
            _page_item("http://s/no-links", links=None),
            _page_item("http://s/no-etag", etag=None),
            _page_item("http://s/other-rules", verdict_by="fedcba9876543210"),  # to be classified again
        ], run_id=None)
        assert revalidations(db, {"site": STAMP}) == {
            ("site", "http://s/plain"): Revalidation('"v1"', None, "http://s/\n/a")}

        # A 304 carries no body: the stored links and status stay, a new ETag is taken.
        save_pages(db, [_page_item("http://s/plain", status=304, etag='"v2"', links=None, unchanged=True)], None)
        assert revalidations(db, {"site": STAMP}) == {
            ("site", "http://s/plain"): Revalidation('"v2"', None, "http://s/\n/a")}
        assert db.execute("SELECT status FROM pages WHERE url = 'http://s/plain'").scalar() == 200


def test_a_304_is_followed_from_links_read_at_the_start_and_a_second_304_is_fetched_whole(tmp_path, monkeypatch):
    from scrapy.http import Request, Response
    from scrapy.utils.test import get_crawler

    import crawler.conditional as conditional
    from crawler.conditional import ConditionalGetMiddleware
    from crawler.store.pages import save_pages

    path = tmp_path / "state.db"
    with StateDB(f"sqlite:///{path}") as db:
        save_pages(db, [_page_item("http://s/plain"), _page_item("http://s/other")], run_id=None)
    crawler = get_crawler()
    middleware = ConditionalGetMiddleware(f"sqlite:///{path}", False, {"site": STAMP}, crawler.stats)
    middleware.load(["site"])

    def no_state_db(*args, **kwargs):
        raise AssertionError("the crawl must not open the state DB")

    monkeypatch.setattr(conditional, "StateDB", no_state_db)

    def ask(url, status):
        request = Request(url, meta={"finpatrol_conditional": True, "finpatrol_target": "site", "finpatrol_url": url})
        assert middleware.process_request(request) is None
        return request, middleware.process_response(request, Response(url, status=status, request=request))

    request, outcome = ask("http://s/plain", 304)
    assert request.headers[b"If-None-Match"] == b'"v1"'
    assert isinstance(outcome, Response) and request.meta["finpatrol_links"] == "http://s/\n/a"
    assert crawler.stats.get_value("conditional/asked") == 1

    # Its links were used: asked again in the same crawl, the page goes out plain.
    request, outcome = ask("http://s/plain", 200)
    assert b"If-None-Match" not in request.headers and "finpatrol_asked" not in request.meta
    assert crawler.stats.get_value("conditional/asked") == 1

    # A page answered whole (200) is no longer held; a 304 for a page no longer held is asked again, whole.
    ask("http://s/other", 200)
    assert middleware.pages == {}
    request = Request("http://s/plain", meta={"finpatrol_asked": ("site", "http://s/plain"),
                                              "finpatrol_conditional": True}, headers={"If-None-Match": '"v1"'})
    outcome = middleware.process_response(request, Response("http://s/plain", status=304, request=request))
    assert isinstance(outcome, Request) and b"If-None-Match" not in outcome.headers, "asked again, whole"
    assert not outcome.meta["finpatrol_conditional"] and "finpatrol_asked" not in outcome.meta
    assert outcome.dont_filter
    assert crawler.stats.get_value("conditional/links_missing") == 1


def test_a_rebuild_keeps_the_terms_a_patrol_wrote_while_it_was_cutting(tmp_path, monkeypatch):
    from crawler.store import search
    from crawler.store.pages import save_pages

    def item(url, text, fingerprint):
        page = _page_item(url)
        page.text, page.text_fingerprint, page.title_tokens, page.text_tokens = text, fingerprint, "t", text
        return page

    with StateDB(f"sqlite:///{tmp_path / 'state.db'}") as db:
        save_pages(db, [item("http://s/a", "保本保息", "f1"), item("http://s/b", "稳赚不赔", "f2")], run_id=None)
        cut = search.index_terms

        def patrol_meanwhile(text):  # a patrol stores a new text of page b while the rebuild cuts
            if text == "稳赚不赔":
                save_pages(db, [item("http://s/b", "资金池", "f3")], run_id=None)
            return cut(text)

        monkeypatch.setattr(search, "index_terms", patrol_meanwhile)
        assert db.index.rebuild() == 2
        assert db.execute("SELECT body FROM page_fts WHERE rowid = 2").scalar() == "资金池"
        assert db.execute("SELECT body FROM page_fts WHERE rowid = 1").scalar() == "保本 保息 保本保息"


def _fetch(url: str, run: int, *, status: int = 200, text: str = "", headers: dict | None = None,
           links: str | None = "http://s/\n/a", unchanged: bool = False):
    from crawler.items import PageItem

    item = PageItem(target_id="site", url=url, final_url=url, status=status, headers=headers or {},
                    body=b"" if status == 304 else text.encode(), encoding="utf-8",
                    fetched_at=f"2026-11-0{run}T02:00:00+00:00", links=links)
    item.unchanged = unchanged
    if not unchanged:
        claim = "保本保息" in text
        item.title, item.text, item.sha256 = "页", text, f"sha-{text}"
        item.text_fingerprint = f"fp-{text}"
        item.verdict = {"labels": ["guaranteed_return"] if claim else [], "risk": "high" if claim else "none",
                        "score": 0.9 if claim else 0.0, "yields": [], "context": "",
                        "findings": [{"rule_id": "gr", "text": "保本保息"}] if claim else []}
    return item


def _patrols(db) -> list[list]:
    """Three patrols of one site whose pages are unchanged, changed, new, gone and back."""
    from crawler.store.changes import mark_gone
    from crawler.store.db import parse_time
    from crawler.store.pages import save_pages
    from crawler.store.runs import start_run

    first = {"etag": '"1"', "last-modified": "Sun, 01 Nov 2026 00:00:00 GMT"}
    runs = [
        [_fetch("http://s/a", 1, text="承诺保本保息", headers=first), _fetch("http://s/b", 1, text="公司介绍", headers=first),
         _fetch("http://s/c", 1, text="保本保息，稳赚", headers=first), _fetch("http://s/d", 1, text="联系我们"),
         _fetch("http://s/f", 1, text="保本保息，月息", headers=first)],
        [_fetch("http://s/a", 2, status=304, headers={"etag": '"2"'}, links=None, unchanged=True),
         _fetch("http://s/b", 2, status=304, links=None, unchanged=True),
         _fetch("http://s/c", 2, headers={"etag": '"3"'}, links="http://s/\n/c2", unchanged=True),
         _fetch("http://s/d", 2, text="资金池"), _fetch("http://s/e", 2, text="新页面")],
        [_fetch("http://s/f", 3, status=304, links=None, unchanged=True),  # back after gone: its hit reopens
         # the same page three times in one batch: stored, answered 304 with another ETag, stored again
         _fetch("http://s/a", 3, text="承诺保本保息，年化", headers={"etag": '"5"'}),
         _fetch("http://s/a", 3, status=304, headers={"etag": '"6"'}, links=None, unchanged=True),
         _fetch("http://s/a", 3, text="承诺保本保息", headers={"etag": '"5"'})],
    ]
    answers, stored = [], set()
    for n, items in enumerate(runs, start=1):
        run_id = start_run(db, "test")
        answers.append(save_pages(db, items, run_id))
        fetched = {item.url for item in items}
        gone = sorted(stored - fetched)  # the stored pages this patrol found answered 404
        stored |= fetched
        mark_gone(db, run_id, {"site": gone}, when=parse_time(f"2026-11-0{n}T03:00:00+00:00"))
    return answers


def test_touching_unchanged_pages_writes_what_the_orm_path_writes(tmp_path, monkeypatch):
    from crawler.store import pages

    def rows(db) -> dict[str, list]:
        tables = ("pages", "page_versions", "hits", "hit_categories", "page_changes")
        return {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}

    with StateDB(f"sqlite:///{tmp_path / 'fast.db'}") as fast:
        fast_answers, fast_rows = _patrols(fast), rows(fast)
    monkeypatch.setattr(pages, "_touch_unchanged", lambda session, items, run_id: {})
    with StateDB(f"sqlite:///{tmp_path / 'orm.db'}") as orm:
        orm_answers, orm_rows = _patrols(orm), rows(orm)
    assert fast_answers == orm_answers
    assert fast_rows == orm_rows
    with StateDB(f"sqlite:///{tmp_path / 'fast.db'}") as fast:
        validators = {url: rest for url, *rest in fast.execute("SELECT url, etag, last_modified, links FROM pages")}
    assert validators["http://s/b"] == ['"1"', "Sun, 01 Nov 2026 00:00:00 GMT", "http://s/\n/a"], "a bare 304 keeps all"
    assert validators["http://s/c"] == ['"3"', None, "http://s/\n/c2"], "an unchanged 200 brings its own"
