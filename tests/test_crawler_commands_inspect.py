"""What ``hits``, ``show`` and ``search`` tell an investigator: why and in which patrol a hit was
removed, which hit a rewording replaced and since when its claims are online, earlier versions
the cluster does not hold, and reversed dates refused. Real patrols of local sites, the real CLI,
a real search server."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml
from smtp_fixtures import finding, store_hits, verdict

from channel_sites import html
from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.store.db import StateDB
from crawler.wording import local_time
from tests.es_fixtures import cluster, osmem_base  # noqa: F401

SECURITY = "<p>借款人逾期时，{}，100%本息保障。</p>"
HIT_KEYS = {  # a stable interface (README): keys are added, never renamed or removed
    "id", "target", "url", "title", "labels", "risk", "score", "context", "findings", "yields", "first_seen",
    "last_seen", "fetched_at", "sha256", "page_id", "first_run", "last_run", "removed_at", "reopened_at",
    "replaced_by", "reclassified", "same_content_as", "also_at",
    "removed_run", "removed_reason", "taken_down", "replaces"}


def home(*pages: str) -> str:
    return html("鑫盈宝", "<p>" + " ".join(f"<a href='/{p}'>{p}</a>" for p in pages) + "</p>")


def run_ids(config: str) -> list[int]:
    return sorted(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))


def test_show_and_hits_say_why_and_in_which_run_a_hit_went_and_which_hit_a_rewording_replaced(make_config):
    site_routes = {
        "/": home("gone.html", "edited.html", "security.html", "notice.html"),
        "/gone.html": html("限时活动", "<p>月息2分，到期刚性兑付，保本保息。</p>"),
        "/edited.html": html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>"),
        "/security.html": html("风控措施", SECURITY.format("风险准备金先行赔付")),
        "/notice.html": html("平台公告", "<p>因资金周转困难，平台即日起暂停提现，恢复时间另行通知。</p>"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = str(make_config([{"id": "xyb", "urls": [site.url("/")]}]))
        assert cli("patrol", "--config", config).returncode == 0
        before = {h["url"].rsplit("/", 1)[1]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
        assert "collapse_signal" in before["notice.html"]["labels"], before["notice.html"]
        site_routes["/gone.html"] = Reply(status=404, body=b"not found")
        site_routes["/edited.html"] = html("鑫盈宝新手标", "<p>鑫盈宝新手标，市场有风险，投资需谨慎。</p>")
        site_routes["/security.html"] = html("风控措施", SECURITY.format("平台先行赔付"))
        site_routes["/notice.html"] = html("平台公告", "<p>平台运营正常，欢迎投资。</p>")
        assert cli("patrol", "--config", config).returncode == 0
    run1, run2 = run_ids(config)

    rows = json_lines(cli("hits", "--config", config, "--json").stdout)
    assert all(set(row) == HIT_KEYS for row in rows), [sorted(set(row) ^ HIT_KEYS) for row in rows]
    hits = {row["id"]: row for row in rows}
    (successor,) = [h for h in rows if h["url"].endswith("/security.html") and not h["removed_at"]]
    said = {page: (hits[h["id"]]["removed_run"], hits[h["id"]]["removed_reason"], hits[h["id"]]["taken_down"])
            for page, h in before.items()}
    assert said == {"gone.html": (run2, "page_gone", False), "edited.html": (run2, "claim_removed", False),
                    "security.html": (run2, "replaced", False), "notice.html": (run2, "claim_removed", True)}
    assert successor["replaces"] == [before["security.html"]["id"]]
    assert (successor["removed_run"], successor["removed_reason"], successor["taken_down"]) == (None, None, False)
    assert all(hits[h["id"]]["replaces"] == [] for h in before.values())

    def show(page: str) -> str:
        return cli("show", str(before[page]["id"]), "--config", config).stdout

    day = local_time(hits[before["gone.html"]["id"]]["removed_at"], "Asia/Shanghai")[:10]
    assert f"state  removed {day} (page gone), in run {run2}" in show("gone.html")
    assert f"state  removed {day} (claim edited away), in run {run2}" in show("edited.html")
    assert f"state  taken down {day} (notice edited away), in run {run2}" in show("notice.html")
    assert f"state  replaced by hit {successor['id']} {day}, in run {run2}" in show("security.html")
    shown = cli("show", str(successor["id"]), "--config", config).stdout
    first_seen = local_time(before["security.html"]["first_seen"], "Asia/Shanghai")
    assert (f"replaces hit {before['security.html']['id']}, first seen {first_seen} (run {run1})"
            in shown.splitlines()), shown
    assert "replaces" not in show("security.html")
    (shown_json,) = json_lines(cli("show", str(successor["id"]), "--config", config, "--json").stdout)
    assert shown_json["replaces"] == [before["security.html"]["id"]] and shown_json["taken_down"] is False
    (gone_json,) = json_lines(cli("show", str(before["notice.html"]["id"]), "--config", config, "--json").stdout)
    assert (gone_json["removed_run"], gone_json["removed_reason"], gone_json["taken_down"]) == (
        run2, "claim_removed", True)
    table = cli("hits", "--config", config).stdout
    assert f"removed {day} (page gone)" in table and f"removed {day} (claim edited away)" in table, table


def test_reversed_since_and_until_are_refused_by_hits_and_search(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text("state_dir: state\ntargets:\n  - {id: local, name: 本地, business: p2p,"
                      " urls: ['http://127.0.0.1:9/'], allow_private_networks: true}\n", encoding="utf-8")
    text = "本地理财产品保本保息，稳赚不赔"
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [("local", "http://127.0.0.1:9/a.html", text, verdict([finding("guaranteed_return", "保本保息")]))],
                   when=datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    for command in (("hits",), ("search", "保本保息")):
        reversed_ = cli(*command, "--config", str(config), "--since", "2026-11-30", "--until", "2026-11-01")
        assert reversed_.returncode == 2, (command, reversed_.stdout)
        assert "--since must be before --until (got --since 2026-11-30, --until 2026-11-01)" in reversed_.stderr
        one_day = cli(*command, "--config", str(config), "--json", "--since", "2026-11-20", "--until", "2026-11-20")
        assert one_day.returncode == 0 and len(json_lines(one_day.stdout)) == 1, (command, one_day.stderr)


def test_search_of_the_cluster_says_how_many_earlier_versions_only_the_embedded_index_finds(cluster, tmp_path):
    site_routes = {"/": home("p.html", "q.html"),
                   "/p.html": html("理财产品", "<p>本平台承诺保本保息，到期刚性兑付，欢迎投资。</p>"),
                   "/q.html": html("另一产品", "<p>刚性兑付，收益稳定。</p>")}
    with SiteServer(routes(site_routes)) as site:
        config = tmp_path / "patrol.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
            "elasticsearch": cluster.yaml_block(),
            "targets": [{"id": "licai", "name": "理财", "business": "p2p", "urls": [site.url("/")]}]},
            allow_unicode=True), encoding="utf-8")
        config = str(config)
        assert cli("es", "setup", "--config", config).returncode == 0
        assert cli("patrol", "--config", config).returncode == 0
        site_routes["/p.html"] = html("理财产品", "<p>本平台严格遵守监管规定，投资有风险，请谨慎选择。</p>")
        assert cli("patrol", "--config", config).returncode == 0

    found = cli("search", "刚性兑付", "--config", config, "--json")
    assert found.returncode == 0, found.stderr
    assert [r["url"].rsplit("/", 1)[1] for r in json_lines(found.stdout)] == ["q.html"], "the cluster: pages now"
    assert ("1 earlier page version also matches (words a page no longer says; Elasticsearch holds pages as they"
            " are now): `finpatrol search --embedded` shows them") in found.stderr, found.stderr
    embedded = json_lines(cli("search", "刚性兑付", "--config", config, "--json", "--embedded").stdout)
    assert {(r["url"].rsplit("/", 1)[1], r["current"]) for r in embedded} == {("q.html", True), ("p.html", False)}
    assert "earlier" not in cli("search", "谨慎选择", "--config", config).stderr
    assert "earlier" not in cli("search", "刚性兑付", "--config", config, "--category", "collapse_signal").stderr
