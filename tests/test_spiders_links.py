"""Link scope, per-target dedup and crawler-trap budgets."""

from spiders.links import MAX_DATE_SHAPED, MAX_QUERY_VARIANTS, LinkBudget, extract_hrefs, in_scope, is_followable


def test_scope_by_domain_and_by_host_port():
    assert in_scope("https://www.example.com/a", ("example.com",))
    assert in_scope("https://example.com:8443/a", ("example.com",))
    assert not in_scope("https://badexample.com/", ("example.com",))
    assert in_scope("http://127.0.0.1:8080/x", ("127.0.0.1:8080",))
    assert not in_scope("http://127.0.0.1:9090/x", ("127.0.0.1:8080",))


def test_followable_skips_binaries_and_other_schemes():
    assert is_followable("http://a.cn/news/1.html")
    assert not is_followable("http://a.cn/logo.png")
    assert not is_followable("mailto:kefu@a.cn")
    assert not is_followable("javascript:void(0)")


def test_dedup_is_canonical():
    budget = LinkBudget()
    assert budget.admit("http://a.cn/p?b=2&a=1")[0]
    assert budget.admit("http://a.cn/p?a=1&b=2#top") == (None, None)


def test_repeating_path_and_deep_path_are_traps():
    budget = LinkBudget()
    assert budget.admit("http://a.cn/x/y/x/y/x/y/") == (None, "repeating_path")
    assert budget.admit("http://a.cn/" + "/".join(f"s{i}" for i in range(20))) == (None, "deep_path")


def test_query_variants_stop_at_budget():
    budget = LinkBudget()
    admitted = [budget.admit(f"http://a.cn/list?sid={i}")[0] for i in range(MAX_QUERY_VARIANTS + 10)]
    assert sum(1 for a in admitted if a) == MAX_QUERY_VARIANTS
    assert budget.admit("http://a.cn/list?sid=x1")[1] == "query_variants"


def test_calendar_stops_at_budget_but_article_ids_do_not():
    budget = LinkBudget()
    months = [f"http://a.cn/calendar/{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(120)]
    admitted = [budget.admit(u)[0] for u in months]
    assert sum(1 for a in admitted if a) == MAX_DATE_SHAPED
    articles = [budget.admit(f"http://a.cn/article/{i}.html")[0] for i in range(300)]
    dated = [budget.admit(f"http://a.cn/news/2026/11/27/{i}.html")[0] for i in range(100, 200)]
    assert all(articles) and all(dated)
    by_query = [budget.admit(f"http://a.cn/cal?year=2026&month={m}&day={d}")[0] for m in range(12) for d in range(5)]
    assert sum(1 for a in by_query if a) == MAX_DATE_SHAPED


def test_hrefs_are_found_in_markup_as_a_browser_would():
    markup = """<html><head><base href="/sub/"></head><body>
    <a href="a.html">A</a> <A HREF='b.html?x=1&amp;y=2'>B</A> <a class=x href=c.html>C</a>
    <!-- <a href="commented.html">hidden</a> --> <map><area shape=rect href="d.html"></map>
    <a name="anchor">no href</a> <link href="style.css"> <a data-href="no.html" href=" e.html ">E</a>
    </body></html>"""
    base, hrefs = extract_hrefs(markup)
    assert base == "/sub/"
    assert hrefs == ["a.html", "b.html?x=1&y=2", "c.html", "d.html", "e.html"]


def test_resolve_joins_like_urljoin_including_dot_segments_and_other_hosts():
    from urllib.parse import urljoin

    from spiders.links import resolve

    base = "https://u@a.cn:8443/news/2026/index.html?x=1"
    hrefs = ["/p/1.html", "/", "/a/../b.html", "/./c", "//cdn.a.cn/x.js", "rel.html", "../up.html", "?q=2",
             "#top", "https://b.cn/", "/s?q=保本&p=2", "mailto:x@a.cn", "", "/p?", "/p#", "/p?#x", "/a;?x",
             "/a;p", "/a//b", "/%E4%B8%AD.html"]
    assert resolve(base, hrefs) == [urljoin(base, href) for href in hrefs]
    assert resolve(base, ["/p/1.html"]) == ["https://u@a.cn:8443/p/1.html"]
