"""Hits of the same content (one claim a target serves under several URLs: a redirect, query
variants) are shown and counted once, each URL keeping its hit: the real state DB written as
patrols write it, read back with the real CLI (hits, show, dossier, report)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from smtp_fixtures import finding, store_hits, verdict

from crawler.config import load_config
from crawler.store.db import StateDB
from tests.conftest import cli, json_lines

CONFIG = """\
state_dir: state
targets:
  - id: xyb
    name: 重庆鑫盈宝网络科技有限公司
    aliases: [鑫盈宝]
    business: p2p
    urls: ["http://127.0.0.1:9/"]
  - id: twin
    name: 重庆双生科技有限公司
    business: p2p
    urls: ["http://127.0.0.2:9/"]
"""
T1 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
CLAIM = "鑫盈宝理财产品承诺保本保息，稳赚不赔"
OTHER_CLAIM = "鑫盈宝新手标保本保息，到期刚性兑付"
CLEAN = "鑫盈宝理财产品，市场有风险，投资需谨慎"
SITE = "http://127.0.0.1:9/"
SAME_URLS = ("products.html", "products.html?term=3", "invest.php")


def page(path: str, text: str, target: str = "xyb") -> tuple[str, str, str, dict]:
    found = [finding("guaranteed_return", "保本保息", text)] if "保本保息" in text else []
    return target, SITE + path, text, verdict(found, risk="high" if found else "none")


def first_patrol(tmp_path, when: datetime = T1):
    """Hits 1–3: one claim on three URLs of xyb; 4: another text with the same labels; 5: the
    claim's words on another target."""
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [*(page(url, CLAIM) for url in SAME_URLS), page("newbie.html", OTHER_CLAIM),
                        page("products.html", CLAIM, "twin")], when=when)
    return config


def hits_json(config, *extra: str) -> dict[int, dict]:
    result = cli("hits", "--config", str(config), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return {h["id"]: h for h in json_lines(result.stdout)}


def table_rows(output: str) -> dict[str, list[str]]:
    """The hits table's rows by id: their cells."""
    return {cells[1]: cells[1:] for cells in ([c.strip() for c in line.split("│")] for line in output.splitlines()
                                              if line.startswith("│ ") and line.split("│")[1].strip())}


def test_identical_pages_of_a_target_are_one_row_and_json_keeps_every_hit(tmp_path):
    config = first_patrol(tmp_path)
    hits = hits_json(config)
    assert sorted(hits) == [1, 2, 3, 4, 5], "one JSON object per hit, as before"
    for hit_id in (1, 2, 3):
        assert hits[hit_id]["same_content_as"] == 1, "the earliest hit stands for the content"
        assert [a["id"] for a in hits[hit_id]["also_at"]] == [i for i in (1, 2, 3) if i != hit_id]
    assert hits[2]["also_at"][0] == {"id": 1, "url": SITE + "products.html"}
    assert hits[4]["same_content_as"] is None and hits[4]["also_at"] == [], "other words, same labels: not grouped"
    assert hits[5]["same_content_as"] is None, "the same words on another target are that target's own"
    assert hits[2]["sha256"] and hits[2]["url"] == SITE + "products.html?term=3", "existing fields unchanged"

    rows = table_rows(cli("hits", "--config", str(config)).stdout)
    assert sorted(rows) == ["1", "4", "5"], rows
    assert "+2 URLs" in rows["1"] and "+" not in "".join(rows["4"])
    every = table_rows(cli("hits", "--config", str(config), "--every-url").stdout)
    assert sorted(every) == ["1", "2", "3", "4", "5"]
    assert "same as 1" in every["3"] and "+2 URLs" in every["1"]
    assert sorted(table_rows(cli("hits", "--config", str(config), "--target", "xyb").stdout)) == ["1", "4"]
    assert list(table_rows(cli("hits", "--config", str(config), "--limit", "1").stdout)) == ["5"]

    shown = cli("show", "2", "--config", str(config)).stdout
    assert "same content also at 2 more URLs (first as hit 1):" in shown, shown
    assert f"hit 1  {SITE}products.html\n" in shown and f"hit 3  {SITE}invest.php\n" in shown
    assert "same content" not in cli("show", "4", "--config", str(config)).stdout
    (shown_json,) = json_lines(cli("show", "3", "--config", str(config), "--json").stdout)
    assert shown_json["same_content_as"] == 1 and [a["id"] for a in shown_json["also_at"]] == [1, 2]


def documents(config) -> tuple[dict, str, str]:
    """The dossier of xyb as JSON and Markdown, and the period report in Markdown."""
    def run(*args: str) -> str:
        result = cli(*args, "--config", str(config))
        assert result.returncode == 0, result.stderr
        return result.stdout

    return (json.loads(run("dossier", "xyb", "--format", "json")), run("dossier", "xyb", "--format", "md"),
            run("report", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "md"))


def md_rows(md: str) -> dict[str, str]:
    """The dossier's hit rows by their first cell (id and state)."""
    return {line.split(" | ")[0][2:]: line for line in md.split("## 命中明细与证据")[1].split("##")[0].splitlines()
            if line.startswith("| ") and line[2:3].isdigit()}


def test_dossier_and_report_list_and_count_a_content_once_saying_on_how_many_pages(tmp_path):
    config = first_patrol(tmp_path)
    data, md, report = documents(config)
    assert sorted(h["id"] for h in data["hits"]) == [1, 2, 3, 4], "the JSON keeps every hit"
    assert {h["id"]: h["same_content_as"] for h in data["hits"]} == {1: 1, 2: 1, 3: 1, 4: None}
    assert data["contents"] == {"live": 2, "live_pages": 4, "live_urls": 4}
    assert data["rectification"]["live"] == 4, "hit records, as before"
    assert data["grade"] == {"grade": "重点关注", "reasons": [
        "重点关注：存在高风险命中（2 个网页命中）", "一般关注：存在违规宣传命中（2 个网页命中）"]}, \
        "one claim on three URLs is not 三条以上高风险命中"
    rows = md_rows(md)
    assert sorted(rows) == ["1", "4"], rows
    assert (f"{SITE}products.html；同一内容另见于 2 个网页：2 {SITE}products.html?term=3、3 {SITE}invest.php"
            in rows["1"]), rows["1"]
    assert "在线命中内容 2 条，涉及 4 个网页（4 条命中记录" in md and "在线命中 2 条内容，涉及 4 个网页；已整改 0 条" in md
    html_text = cli("dossier", "xyb", "--config", str(config)).stdout
    assert html_text.count("同一内容另见于 2 个网页") == 1 and "<tr>\n<td>1</td>" in html_text
    assert "<tr>\n<td>2</td>" not in html_text and "<tr>\n<td>4</td>" in html_text

    # hit 5 is twin's record of hit 1's URL: one page (网页), so one content in the report's counts
    assert "本期命中 5 条（2 条不同内容" in report and "涉及 4 个网页（网页按网址计" in report, report
    assert "仍在线 2 条内容，涉及 4 个网页（5 条命中记录）；" in report
    row = next(line for line in report.splitlines() if line.startswith("| 重庆鑫盈宝网络科技有限公司（xyb） |"))
    assert row.split(" | ")[2] == "4", "the top risks still count pages"


def test_a_claim_taken_off_one_url_is_told_apart_from_the_urls_that_still_show_it(tmp_path):
    config = first_patrol(tmp_path)
    with StateDB(load_config(config).db_url) as db:  # products.html rectified; its variants not (yet)
        store_hits(db, [page("products.html", CLEAN), *(page(url, CLAIM) for url in SAME_URLS[1:]),
                        page("newbie.html", OTHER_CLAIM), page("products.html", CLAIM, "twin")],
                   when=T1 + timedelta(hours=1))
    hits = hits_json(config)
    assert sorted(hits) == [1, 2, 3, 4, 5]
    assert hits[1]["removed_at"] and hits[1]["same_content_as"] is None and hits[1]["also_at"] == []
    assert hits[2]["same_content_as"] == 2 and hits[2]["also_at"] == [{"id": 3, "url": SITE + "invest.php"}]
    assert hits[3]["same_content_as"] == 2

    rows = table_rows(cli("hits", "--config", str(config), "--target", "xyb").stdout)
    assert sorted(rows) == ["1", "2", "4"], rows
    assert any(cell.startswith("removed") for cell in rows["1"]) and "+1 URL" in rows["2"]
    assert "same content" not in cli("show", "1", "--config", str(config)).stdout, "rectified here"
    assert "same content also at 1 more URL:\n  hit 3" in cli("show", "2", "--config", str(config)).stdout

    data, md, report = documents(config)
    assert data["contents"] == {"live": 2, "live_pages": 3, "live_urls": 3}
    rows = md_rows(md)
    assert sorted(rows) == ["1（已整改）", "2", "4"], rows
    assert "同一内容" not in rows["1（已整改）"] and f"同一内容另见于 1 个网页：3 {SITE}invest.php" in rows["2"]
    assert "仍在线 3 条内容，涉及 4 个网页（4 条命中记录）；本期整改 1 条" in report, report


def test_a_content_whose_first_hit_is_filtered_out_is_shown_by_a_hit_that_matches(tmp_path):
    """--since keeps hits last seen from then on: a URL of the content not seen since stays out."""
    config = first_patrol(tmp_path)
    with StateDB(load_config(config).db_url) as db:  # products.html not reached the next day, still live
        store_hits(db, [page(url, CLAIM) for url in SAME_URLS[1:]], when=T1 + timedelta(days=1))
    since = (T1 + timedelta(hours=12)).isoformat()
    rows = table_rows(cli("hits", "--config", str(config), "--since", since).stdout)
    assert sorted(rows) == ["3"], "one row, the newest matching hit of the content"
    assert "+2 URLs" in rows["3"]
    assert hits_json(config, "--since", since)[2]["same_content_as"] == 1
