"""Rectified or reworded, end to end: a platform that rewords its guarantee between two
patrols has not rectified it, one that takes the claim down has. Real patrols of a local
site, read back with the real CLI (changes, hits, show, report, dossier)."""

from __future__ import annotations

import json

from channel_sites import html
from conftest import cli, json_lines
from crawler.demo.server import SiteServer, routes

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
    assert dossier["rectification"] == {"live": 1, "removed": 1, "replaced": 1, "reopened": 0}
    dossier_md = cli("dossier", "xyb", "--config", config, "--format", "md").stdout
    assert f"| {old_guarantee['id']}（已改写，见 {new_guarantee['id']}） |" in dossier_md
    assert f"| {old_promo['id']}（已整改） |" in dossier_md
    assert f"| {old_guarantee['id']}（已整改） |" not in dossier_md
