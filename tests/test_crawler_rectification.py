"""Rectified or reworded, end to end: a platform that rewords its guarantee between two
patrols has not rectified it, one that takes the claim down has. Real patrols of a local
site, read back with the real CLI (changes, hits, show, report, dossier)."""

from __future__ import annotations

import json
from datetime import datetime

from channel_sites import html
from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes, with_validators
from crawler.store.db import StateDB

SECURITY = "<p>借款人逾期时，{}，100%本息保障。</p>"


def test_a_reworded_guarantee_is_replaced_not_rectified_and_a_removed_claim_is_rectified(make_config):
    site_routes = {
        "/": html("鑫盈宝", "<p><a href='/security.html'>安全保障</a> <a href='/promo.html'>新手标</a></p>"),
        "/security.html": html("风控措施", SECURITY.format("风险准备金先行赔付")),
        "/promo.html": html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = str(make_config([{"id": "xyb", "urls": [site.url("/")]}]))
        first = cli("patrol", "--config", config)
        assert first.returncode == 0, first.stdout + first.stderr
        before = {h["url"].rsplit("/", 1)[1]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
        assert before["security.html"]["labels"] == ["guaranteed_return"]
        assert before["promo.html"]["labels"] == ["guaranteed_return", "high_yield"]

        # Between the patrols the platform rewords its guarantee (same rules, other words)
        # and takes the promo claim down.
        site_routes["/security.html"] = html("风控措施", SECURITY.format("平台先行赔付"))
        site_routes["/promo.html"] = html("鑫盈宝新手标", "<p>鑫盈宝新手标，市场有风险，投资需谨慎。</p>")
        second = cli("patrol", "--config", config)
        assert second.returncode == 0, second.stdout + second.stderr

    hits = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
    old_guarantee, old_promo = hits[before["security.html"]["id"]], hits[before["promo.html"]["id"]]
    (new_guarantee,) = [h for h in hits.values() if h["url"].endswith("/security.html") and not h["removed_at"]]
    assert new_guarantee["labels"] == ["guaranteed_return"] and new_guarantee["replaced_by"] is None
    assert old_guarantee["removed_at"] and old_guarantee["replaced_by"] == new_guarantee["id"]
    assert old_promo["removed_at"] and old_promo["replaced_by"] is None, "taken down: rectified"

    run2 = max(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))
    changes = cli("changes", "--config", config, "--run", str(run2)).stdout
    assert (f"hit {old_guarantee['id']} reworded → hit {new_guarantee['id']} (still guaranteed_return)"
            in changes), changes
    assert f"hit {old_promo['id']} removed (rectified): guaranteed_return, high_yield" in changes
    assert f"hit {old_guarantee['id']} removed" not in changes
    removed = {c["url"].rsplit("/", 1)[1]: c["hits"]["removed"]
               for c in json_lines(cli("changes", "--config", config, "--run", str(run2), "--json").stdout)}
    assert removed["security.html"]["replaced_by"] == new_guarantee["id"]
    assert removed["promo.html"]["replaced_by"] is None

    shown = cli("show", str(old_guarantee["id"]), "--config", config).stdout
    assert f"state  replaced by hit {new_guarantee['id']}" in shown, shown
    assert "state  removed" in cli("show", str(old_promo["id"]), "--config", config).stdout
    (shown_json,) = json_lines(cli("show", str(old_guarantee["id"]), "--config", config, "--json").stdout)
    assert shown_json["replaced_by"] == new_guarantee["id"]
    table = cli("hits", "--config", config).stdout
    assert "replaced by hit" in table and table.count("removed") == 1, table

    report = cli("report", "--config", config, "--since", "2000-01-01", "--format", "md").stdout
    assert "本期整改 1 条；改写仍违规（不计整改）1 条" in report, report
    dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
    assert dossier["rectification"] == {"live": 1, "removed": 1, "replaced": 1, "withdrawn": 0, "rejudged": 0,
                                        "taken_down": 0, "reopened": 0}
    dossier_md = cli("dossier", "xyb", "--config", config, "--format", "md").stdout
    assert f"| {old_guarantee['id']}（已改写，见 {new_guarantee['id']}） |" in dossier_md
    assert f"| {old_promo['id']}（已整改） |" in dossier_md
    assert f"| {old_guarantee['id']}（已整改） |" not in dossier_md


def test_a_rewording_taken_back_is_no_reopening_while_a_rectified_claim_back_is(make_config):
    """整改后复现 is a claim back after the page stopped making it: the guarantee said in other words
    in between never stopped, the promo taken down did. The record keeps both turns."""
    site_routes = {"/": home("security.html", "promo.html"),
                   "/security.html": html("风控措施", SECURITY.format("风险准备金先行赔付")), "/promo.html": PROMO}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        first = hits_of(config)
        site_routes["/security.html"] = html("风控措施", SECURITY.format("平台先行赔付"))  # reworded
        site_routes["/promo.html"] = PROMO_RECTIFIED  # taken down
        patrolled(config)
        (reworded,) = [h for h in json_lines(cli("hits", "--config", config, "--json").stdout)
                       if h["url"].endswith("/security.html") and not h["removed_at"]]
        assert reworded["id"] != first["security.html"]["id"]
        site_routes["/security.html"] = html("风控措施", SECURITY.format("风险准备金先行赔付"))  # the first words again
        site_routes["/promo.html"] = PROMO  # the claim is back
        run3 = patrolled(config)

    hits = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
    guarantee, successor, promo = (hits[first["security.html"]["id"]], hits[reworded["id"]],
                                   hits[first["promo.html"]["id"]])
    assert guarantee["removed_at"] is None and guarantee["reopened_at"] is None, guarantee
    assert successor["removed_at"] and successor["replaced_by"] == guarantee["id"], "the rewording, replaced back"
    assert promo["removed_at"] is None and promo["reopened_at"], "rectified, then back: 整改后复现"

    changes = cli("changes", "--config", config, "--run", str(run3)).stdout
    assert f"hit {successor['id']} reworded → hit {guarantee['id']} (still guaranteed_return)" in changes, changes
    assert f"hit {guarantee['id']} back (said in other words meanwhile: not rectified)" in changes, changes
    assert f"hit {promo['id']} reopened: guaranteed_return, high_yield" in changes, changes
    records = changes_of(config, run3)
    assert records["security.html"]["hits"]["back"]["id"] == guarantee["id"]
    assert records["security.html"]["hits"]["reopened"] is None
    assert records["promo.html"]["hits"]["reopened"]["id"] == promo["id"]

    report = cli("report", "--config", config, "--since", "2000-01-01", "--format", "md").stdout
    assert "整改后复现 1 条" in report, report
    dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
    assert dossier["rectification"]["reopened"] == 1, dossier["rectification"]


def test_changes_lists_as_claims_only_words_the_edit_wrote_or_deleted(make_config):
    """The help page drops its guarantee; 债权转让 stays in its own sentence, but the new wording
    (平台…收益) is a cue near it, so the new verdict finds weak evidence of unlicensed business
    there, below that category's threshold. Neither that nor new words of weak evidence alone
    (权威认证: false_advertising below its threshold) is a claim the page made. On the exit page a
    cue written next to an unchanged sentence brings the category over it: a new label, but in
    words that were there, so no claim added either."""
    exit_page = "<p>鑫盈宝{}承诺保本保息。</p><p>定期产品可通过债权转让或股权转让提前退出。</p>"
    faq = "<p>投资安全吗？{}</p><p>可以提前退出吗？定期产品可通过债权转让提前退出。</p><p>以鑫月宝为例，月息2分。</p>"
    site_routes = {"/": home("help.html", "exit.html"), "/exit.html": html("退出", exit_page.format("")),
                   "/help.html": html("帮助中心", faq.format("鑫盈宝承诺保本保息，稳赚不赔。"))}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        site_routes["/help.html"] = html("帮助中心", faq.format("出借有风险，平台不承诺收益。年化收益率高达18%。平台获权威认证。"))
        site_routes["/exit.html"] = html("退出", exit_page.format("平台"))
        run2 = patrolled(config)

    change = changes_of(config, run2)["help.html"]
    opened = change["hits"]["opened"]
    assert {"ub.weak", "fa.weak"} <= set(opened["rule_ids"]) and opened["labels"] == ["high_yield"], opened
    assert {(c["rule_id"], c["text"]) for c in change["claims_added"]} == {
        ("high_yield.above_ceiling", "年化收益率高达18%")}, change["claims_added"]
    assert {c["text"] for c in change["claims_removed"]} == {"承诺保本", "保本保息", "稳赚不赔"}, change["claims_removed"]
    exit_change = changes_of(config, run2)["exit.html"]
    assert "unlicensed_business" in exit_change["hits"]["opened"]["labels"], exit_change["hits"]
    assert exit_change["claims_added"] == [] and exit_change["claims_removed"] == [], exit_change


# A page is gone only when the server says so (404/410). A page the crawl did not reach
# through links is still a page: its open hit is checked by asking for it directly.

PROMO = html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>")
PROMO_RECTIFIED = html("鑫盈宝新手标", "<p>鑫盈宝新手标，市场有风险，投资需谨慎。</p>")


def home(*links: str) -> str:
    return html("鑫盈宝", "<p>" + " ".join(f"<a href='{link}'>{link}</a>" for link in links) + "</p>")


def patrolled(config: str) -> int:
    """Patrol once with the real CLI; the new run's id."""
    result = cli("patrol", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    return max(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))


def hits_of(config: str) -> dict[str, dict]:
    """path → hit (one hit per page in these tests)."""
    return {h["url"].split("/", 3)[3]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}


def changes_of(config: str, run: int) -> dict[str, dict]:
    return {c["url"].split("/", 3)[3]: c
            for c in json_lines(cli("changes", "--config", config, "--run", str(run), "--json").stdout)}


def run_stats(config: str, run: int) -> dict:
    from crawler.config import load_config
    from crawler.store.db import StateDB
    from crawler.store.models import PatrolRun

    with StateDB(load_config(config).db_url) as db, db.new_session() as session:
        return session.get(PatrolRun, run).stats


def write_target(make_config, url: str, **fields) -> str:
    return str(make_config([{"id": "xyb", "urls": [url]} | fields]))


def test_a_page_no_longer_linked_but_online_is_checked_directly_and_not_rectified(make_config):
    site_routes = {"/": home("promo.html", "about.html"), "/promo.html": PROMO,
                   "/about.html": html("关于我们", "<p>公司介绍。</p>")}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        hit = hits_of(config)["promo.html"]

        site_routes["/"] = home("about.html")  # the promo is unlinked, but still online with its claim
        run2 = patrolled(config)
        changes = changes_of(config, run2)
        assert set(changes) == {""} and changes[""]["kind"] == "changed", "only the home page changed: no page gone"
        after = hits_of(config)["promo.html"]
        assert after["id"] == hit["id"] and after["removed_at"] is None
        assert after["last_run"] == run2, "the page was asked for directly and its claim seen again"
        assert run_stats(config, run2)["patrol/target/xyb/revisited"] == 1

        site_routes["/promo.html"] = PROMO_RECTIFIED  # still unlinked: the next patrol still checks it
        run3 = patrolled(config)
    promo = changes_of(config, run3)["promo.html"]
    assert promo["kind"] == "changed" and promo["hits"]["removed"]["id"] == hit["id"]
    assert f"hit {hit['id']} removed (rectified)" in cli("changes", "--config", config, "--run", str(run3)).stdout
    assert hits_of(config)["promo.html"]["removed_at"], "taken down: rectified, on evidence"


def test_a_lower_max_depth_neither_rectifies_deeper_hits_nor_reopens_them_later(make_config):
    site_routes = {"/": home("products.html"), "/products.html": html("产品", "<p><a href='promo.html'>新手标</a></p>"),
                   "/promo.html": PROMO}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"), max_depth=3)
        patrolled(config)
        hit = hits_of(config)["promo.html"]

        write_target(make_config, site.url("/"), max_depth=0)  # the operator lowers the depth
        run2 = patrolled(config)
        assert changes_of(config, run2) == {}, "pages beyond the new depth are not gone"
        assert hits_of(config)["promo.html"]["removed_at"] is None
        assert hits_of(config)["promo.html"]["last_run"] == run2, "the hit page is checked whatever its depth"

        write_target(make_config, site.url("/"), max_depth=3)  # and restores it
        run3 = patrolled(config)
    assert changes_of(config, run3) == {}
    final = hits_of(config)["promo.html"]
    assert final["id"] == hit["id"] and final["removed_at"] is None
    dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
    assert dossier["rectification"] == {"live": 1, "removed": 0, "replaced": 0, "withdrawn": 0, "rejudged": 0,
                                        "taken_down": 0, "reopened": 0}
    report = cli("report", "--config", config, "--since", "2000-01-01", "--format", "md").stdout
    assert "本期整改 0 条" in report and "整改后复现 0 条" in report, report


def test_a_changed_host_leaves_the_old_pages_hits_as_they_are_and_says_how_many(make_config):
    site_routes = {"/": home("promo.html"), "/promo.html": PROMO}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        (old,) = json_lines(cli("hits", "--config", config, "--json").stdout)

        moved = site.url("/").replace("127.0.0.1", "localhost")  # the same site under another host name
        write_target(make_config, moved)
        result = cli("patrol", "--config", config)
        assert result.returncode == 0, result.stdout + result.stderr
    run2 = max(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))
    hits = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
    assert hits[old["id"]]["removed_at"] is None, "out of scope now, not deleted: not rectified"
    assert [h["url"] for h in hits.values() if h["id"] != old["id"]] == [moved + "promo.html"]
    assert all(c["kind"] != "gone" for c in changes_of(config, run2).values())
    assert run_stats(config, run2)["patrol/target/xyb/out_of_scope"] == 1
    assert "1 stored page(s) with open hits are outside its scope" in result.stdout + result.stderr


def test_a_deleted_page_is_gone_and_rectified_while_a_failing_one_stays(make_config):
    site_routes = {"/": home("promo.html", "pool.html", "offer.html"), "/promo.html": PROMO,
                   "/pool.html": html("活期宝", "<p>平台资金池随存随取，保本保息。</p>"),
                   "/offer.html": html("限时活动", "<p>月息2分，到期刚性兑付，保本保息。</p>")}
    with SiteServer(routes(site_routes)) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        before = hits_of(config)
        assert set(before) == {"promo.html", "pool.html", "offer.html"}

        del site_routes["/promo.html"]                            # deleted, still linked: 404
        site_routes["/"] = home("promo.html", "offer.html")
        site_routes["/pool.html"] = Reply(status=410, body=b"gone")  # deleted and unlinked: 410
        site_routes["/offer.html"] = Reply(status=500, body=b"oops")  # failing: no evidence of anything
        run2 = patrolled(config)
    changes = changes_of(config, run2)
    assert {path: c["kind"] for path, c in changes.items()} == {
        "": "changed", "promo.html": "gone", "pool.html": "gone"}, "the home page lost a link"
    assert changes["promo.html"]["hits"]["removed"]["id"] == before["promo.html"]["id"]
    text = cli("changes", "--config", config, "--run", str(run2)).stdout
    assert f"hit {before['pool.html']['id']} removed (rectified)" in text, text
    after = hits_of(config)
    assert after["promo.html"]["removed_at"] and after["pool.html"]["removed_at"]
    assert after["offer.html"]["removed_at"] is None, "a server error is not a deletion"
    assert run_stats(config, run2)["patrol/target/xyb/gone"] == 2


def test_a_site_that_answers_nothing_has_its_hit_pages_left_unchecked_not_waited_for(make_config):
    with SiteServer(routes({"/": home("promo.html"), "/promo.html": PROMO})) as site:
        config = write_target(make_config, site.url("/"))
        patrolled(config)
        (hit,) = json_lines(cli("hits", "--config", config, "--json").stdout)
    down = cli("patrol", "--config", config)  # the server is gone: every request is refused
    assert down.returncode == 1, down.stdout + down.stderr
    assert "answered no request in this patrol: its 1 page(s) with open hits are not checked again" in down.stderr
    run2 = max(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))
    stats = run_stats(config, run2)
    assert stats["patrol/target/xyb/revisit_skipped"] == 1 and "patrol/target/xyb/revisited" not in stats
    (after,) = json_lines(cli("hits", "--config", config, "--json").stdout)
    assert after["removed_at"] is None and after["last_run"] == hit["last_run"]


# The office changes its rules (a rules file, the yield ceiling, a target's kind): pages
# whose words did not change are judged again at the next patrol, and what the new rules
# no longer flag is withdrawn, not rectified.

GOLDEN_EGG_RULE = """category: guaranteed_return
rules:
  - id: office.golden_egg
    weight: 1.0
    phrases: [金蛋计划]
"""


def test_a_rule_change_judges_unchanged_pages_again_and_withdraws_what_it_no_longer_flags(make_config, tmp_path):
    views = iter(range(100, 10_000))
    site_routes = {
        "/": home("yield.html", "egg.html", "both.html", "about.html", "counter.html"),
        "/yield.html": html("月月盈", "<p>鑫盈宝月月盈，年化收益率12%，期限灵活。</p>"),
        "/egg.html": html("金蛋", "<p>鑫盈宝金蛋计划，每月分红到账。</p>"),
        "/both.html": html("保障", "<p>本平台承诺保本保息，金蛋计划安全放心。</p>"),
        "/about.html": html("关于我们", "<p>公司介绍。</p>"),
        # its text changes on every fetch (a view counter); its claim does not
        "/counter.html": lambda request: Reply(200, {"Content-Type": "text/html; charset=utf-8"}, html(
            "季季盈", f"<p>鑫盈宝季季盈，年化收益率13%，稳健增值。</p><p>阅读 {next(views)} 次</p>").encode()),
    }
    plain = routes(site_routes)

    def like_nginx(request):  # an ETag on every page, 304 to a client that has it
        reply = plain(request)
        return with_validators(request, reply) if reply is not None else None

    with SiteServer(like_nginx) as site:
        config = write_target(make_config, site.url("/"))
        run1 = patrolled(config)
        before = hits_of(config)
        assert {path: h["labels"] for path, h in before.items()} == {
            "yield.html": ["high_yield"], "both.html": ["guaranteed_return"], "counter.html": ["high_yield"]}
        assert cli("alerts", "send", "--config", config).returncode == 0
        told = json_lines(cli("alerts", "list", "--config", config, "--json").stdout)

        # The office raises the yield ceiling and adds a rule; the site does not change.
        (tmp_path / "office.yaml").write_text(GOLDEN_EGG_RULE, encoding="utf-8")
        make_config([{"id": "xyb", "urls": [site.url("/")]}], yield_ceiling=15, rules_files=["office.yaml"])
        checked = cli("check-config", "--config", config).stdout
        assert "6 stored page(s) of 1 target(s) were classified with other rules, yield_ceiling or kind (xyb)" \
            in " ".join(checked.split()), checked
        run2 = patrolled(config)
        assert "classified with other rules" not in cli("check-config", "--config", config).stdout
        stats = run_stats(config, run2)
        assert stats.get("conditional/not_modified", 0) == 0, "pages judged by other rules are fetched whole"
        assert stats["classify/rules_changed"] == 5, "the counter page's body changed anyway"
        assert stats["store/new_hits"] == 1, "only the newly flagged page is a new finding"

        # Nothing changes again: the new verdicts are stored with their rules, and 304s suffice.
        run3 = patrolled(config)
        assert run_stats(config, run3)["conditional/not_modified"] == 5
        assert "classify/rules_changed" not in run_stats(config, run3)
        assert {path: c["hits"] for path, c in changes_of(config, run3).items()} == {
            "counter.html": {"removed": None, "opened": None, "reopened": None, "back": None}}

        after = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
        withdrawn, old_both = after[before["yield.html"]["id"]], after[before["both.html"]["id"]]
        counted = after[before["counter.html"]["id"]]
        for hit in (withdrawn, counted):
            assert hit["removed_at"] and hit["reclassified"] and hit["replaced_by"] is None, hit
        (egg,) = [h for h in after.values() if h["url"].endswith("/egg.html")]
        assert egg["labels"] == ["guaranteed_return"] and egg["first_run"] == run2 and not egg["removed_at"]
        run2_start = datetime.fromisoformat(run_stats(config, run2)["start_time"])
        assert datetime.fromisoformat(egg["first_seen"]) < run2_start, "its words were on the page since patrol 1"
        (new_both,) = [h for h in after.values() if h["url"].endswith("/both.html") and not h["removed_at"]]
        assert old_both["reclassified"] and old_both["replaced_by"] == new_both["id"], "same words, judged again"
        assert not new_both["reclassified"] and not egg["reclassified"]
        assert new_both["first_seen"] == old_both["first_seen"]

        guaranteed = json_lines(cli("hits", "--config", config, "--category", "guaranteed_return", "--json").stdout)
        assert {h["id"] for h in guaranteed} >= {new_both["id"], egg["id"]}, "judged again: filed by category too"

        changes = cli("changes", "--config", config, "--run", str(run2)).stdout
        for hit in (withdrawn, counted):
            assert f"hit {hit['id']} withdrawn (rules changed, same words): high_yield" in changes, changes
        assert (f"hit {old_both['id']} judged again → hit {new_both['id']} "
                "(rules changed, same words; still guaranteed_return)") in changes, changes
        assert f"hit {egg['id']} opened (rules changed, same words): guaranteed_return" in changes, changes
        assert "rectified" not in changes and "reworded" not in changes and "reopened" not in changes, changes
        assert "state  withdrawn (rules changed)" in cli("show", str(withdrawn["id"]), "--config", config).stdout
        with StateDB(load_config(config).db_url) as db:  # as recorded before page_changes.by_rules was
            db.execute("UPDATE page_changes SET by_rules = NULL")
        assert f"hit {withdrawn['id']} withdrawn (rules changed, same words)" in cli(
            "changes", "--config", config, "--run", str(run2)).stdout
        dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
        assert dossier["rectification"] == {"live": 2, "removed": 0, "replaced": 0, "withdrawn": 2, "rejudged": 1,
                                            "taken_down": 0, "reopened": 0}
        report = cli("report", "--config", config, "--since", "2000-01-01", "--format", "md").stdout
        assert "本期整改 0 条" in report and "规则调整后撤销（措辞未变，不计整改）2 条" in report, report
        assert "规则调整后重新判定 1 条" in report, report

        # The newly flagged page alerts; the claim judged again in the same words is not told twice.
        assert cli("alerts", "send", "--config", config).returncode == 0
        messages = json_lines(cli("alerts", "list", "--config", config, "--json").stdout)
        new_alerts = [a for m in messages[: len(messages) - len(told)] for a in m["alerts"]]
        assert {a["hit_id"] for a in new_alerts} == {egg["id"]}, new_alerts

        # The office takes its change back: the old verdicts return, not as claims made again.
        make_config([{"id": "xyb", "urls": [site.url("/")]}])
        run4 = patrolled(config)
    back = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
    for hit in (withdrawn, counted, old_both):
        assert back[hit["id"]]["removed_at"] is None and back[hit["id"]]["reopened_at"] is None, back[hit["id"]]
    changes = cli("changes", "--config", config, "--run", str(run4)).stdout
    assert f"hit {withdrawn['id']} back (rules changed, same words): high_yield" in changes, changes
    assert f"hit {egg['id']} withdrawn (rules changed, same words): guaranteed_return" in changes, changes
    assert "reopened" not in changes and "rectified" not in changes, changes
    dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
    assert dossier["rectification"]["reopened"] == 0 and dossier["rectification"]["live"] == 3, dossier

    # The unit mailed about the egg page is told that it was withdrawn, once.
    assert cli("alerts", "send", "--config", config).returncode == 0
    latest = json_lines(cli("alerts", "list", "--config", config, "--json").stdout)
    notices = [(m, a) for m in latest[: len(latest) - len(messages)] for a in m["alerts"]]
    assert [(a["kind"], a["hit_id"], a["category"]) for _m, a in notices] == [
        ("withdrawal", egg["id"], "guaranteed_return")], notices
    assert notices[0][0]["subject"].startswith(f"【撤销通报】承诺保本保息/刚性兑付（命中 #{egg['id']}）"), notices
    assert cli("alerts", "send", "--config", config).returncode == 0
    assert len(json_lines(cli("alerts", "list", "--config", config, "--json").stdout)) == len(latest)
    assert run1 < run2


def test_a_collapse_notice_taken_down_is_no_rectification(make_config):
    """A platform that deletes its 暂停提现 notice resolved nothing: changes, show, the dossier
    and the grade say it was taken down, and it still counts as a risk event."""
    site_routes = {
        "/": html("鑫盈宝", "<p><a href='/notice.html'>平台公告</a></p>"),
        "/notice.html": html("平台公告", "<p>因资金周转困难，平台即日起暂停提现，恢复时间另行通知。</p>"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = str(make_config([{"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "urls": [site.url("/")]}]))
        assert cli("patrol", "--config", config).returncode == 0
        (notice,) = json_lines(cli("hits", "--config", config, "--json").stdout)
        assert "collapse_signal" in notice["labels"], notice
        site_routes["/notice.html"] = html("平台公告", "<p>平台运营正常，欢迎投资。</p>")
        assert cli("patrol", "--config", config).returncode == 0

    changes = cli("changes", "--config", config).stdout
    assert f"hit {notice['id']} removed (taken down: a risk notice, not rectified)" in changes, changes
    (change,) = [c for c in json_lines(cli("changes", "--config", config, "--json").stdout)
                 if c["hits"]["removed"]]
    assert change["hits"]["removed"]["taken_down"] is True
    assert "state  taken down" in cli("show", str(notice["id"]), "--config", config).stdout
    found = cli("search", "暂停提现", "--config", config)
    assert "hit taken down (a risk notice, not rectified)" in found.stdout, found.stdout
    (earlier,) = json_lines(cli("search", "暂停提现", "--config", config, "--json").stdout)
    assert earlier["hit_taken_down"] is True and earlier["current"] is False, earlier
    dossier = json.loads(cli("dossier", "xyb", "--config", config, "--format", "json").stdout)
    assert dossier["rectification"]["removed"] == 0 and dossier["rectification"]["taken_down"] == 1
    assert dossier["grade"]["grade"] == "高风险", dossier["grade"]
    md = cli("dossier", "xyb", "--config", config, "--format", "md").stdout
    assert "（已撤下，不计整改）" in md and "风险信息已撤下（不计整改）1 条" in md, md
