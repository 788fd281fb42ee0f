"""Hit alerts of a post or an ad that names a registered institution, patrolled for real.

A forum registered as a target (``kind: forum``), an opinion source reading the same
forum and a search channel are served on 127.0.0.1 and patrolled with the real CLI; the
alerts go to a real aiosmtpd server. A claim attributed to 鑫盈宝 (by name, by its ad's
landing domain) goes to 鑫盈宝's lead unit and names 鑫盈宝 and where it was said; a
claim naming no one routes by where it was found, as before; a post found both on the
forum and through the source tells each unit once.
"""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import select

from channel_sites import LIST_SELECTORS, forum_row, html, platform_routes, rogue_routes, search_routes
from conftest import cli, json_lines
from smtp_fixtures import SmtpSink
from crawler.alerts.models import Alert, Delivery
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.discovery.models import HitAttribution
from crawler.store.db import StateDB
from crawler.store.models import Hit

UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
XYB = "重庆鑫盈宝网络科技有限公司"
FORUM = "江津生活论坛"
FOOTER = f"{FORUM} 版权所有"


def forum_routes() -> dict:
    """A board of two threads whose titles name no one: a promoter's post about 鑫盈宝 and one about no one."""
    board = html("投资理财版", "<table>" + forum_row("/t-1.html", "新手标分享", "理财达人", "2026-11-26 20:31", 12)
                 + forum_row("/t-2.html", "理财群推荐", "小王", "2026-11-26 21:05", 3) + "</table>", FOOTER)
    return {
        "/": board,
        "/t-1.html": html("新手标分享", "<p>推荐鑫盈宝新手专享标：承诺保本保息，年化收益18%，注册就送红包，名额有限。</p>",
                          FOOTER),
        "/t-2.html": html("理财群推荐", "<p>加群领新手专享标：承诺保本保息，年化收益18%，注册就送红包，名额有限。</p>",
                          FOOTER),
    }


def write_config(path, targets: list[dict], smtp_port: int, **more) -> None:
    path.write_text(yaml.safe_dump({
        "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
        "alerts": {"quiet_hours": None, "opinion": {"threshold": 99, "first_mass_incident": False}},
        "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "targets": targets,
    } | more, allow_unicode=True), encoding="utf-8")


def mails(sink, start: int = 0) -> list[tuple[str, str, str]]:
    """(unit, subject, text body) of each message received, from the ``start``-th on."""
    return [(m["X-Finpatrol-Unit"], str(m["Subject"]), m.get_body(("plain",)).get_content())
            for m in sink.messages[start:]]


def hit_alerts(config) -> list[tuple[str, str, str, list[str]]]:
    """(URL of the hit, where it was found, the alert's target, units) of every hit alert, in order."""
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            rows = session.execute(select(Alert, Hit).join(Hit, Hit.id == Alert.hit_id)
                                   .where(Alert.kind == "hit").order_by(Alert.id)).all()
            return [(hit.url, hit.target_id, alert.target_id,
                     sorted(session.scalars(select(Delivery.unit).where(Delivery.alert_id == alert.id))))
                    for alert, hit in rows]
    finally:
        db.close()


@pytest.fixture(scope="module")
def forum_patrolled(tmp_path_factory):
    """The forum and the platform patrolled and their alerts sent (phase 1); then the opinion
    source reading the same board, and its alerts sent (phase 2). Yields what each phase mailed."""
    root = tmp_path_factory.mktemp("attributed")
    with SmtpSink() as sink, SiteServer(routes(forum_routes())) as forum, \
            SiteServer(routes({"/": html("鑫盈宝", "<p>本平台介绍。</p>")})) as platform:
        config = root / "patrol.yaml"
        write_config(config, [
            {"id": "xyb", "name": XYB, "aliases": ["鑫盈宝"], "business": "p2p", "urls": [platform.url("/")]},
            {"id": "forum", "name": FORUM, "business": "other", "kind": "forum", "urls": [forum.url("/")]},
        ], sink.port, sources=[{"id": "bbs", "name": "投资理财版", "kind": "forum", "url": forum.url("/"),
                                "selectors": LIST_SELECTORS}])
        loaded = load_config(config)
        sites = cli("patrol", "--config", str(config))
        assert sites.returncode == 0, sites.stdout + sites.stderr
        db = StateDB(loaded.db_url)
        try:
            deliver(loaded, db)
            first = len(sink.received)
            source = cli("patrol", "--config", str(config), "--sources")
            assert source.returncode == 0, source.stdout + source.stderr
            deliver(loaded, db)
        finally:
            db.close()
        yield config, forum, mails(sink, 0)[:first], mails(sink, first)


def test_a_forum_post_naming_a_p2p_platform_alerts_its_lead_unit_and_names_it(forum_patrolled):
    config, forum, sent, _ = forum_patrolled
    post = forum.url("/t-1.html")
    told = [(unit, subject, body) for unit, subject, body in sent if post in body]
    assert [unit for unit, _, _ in told] == ["cbrc"], "the P2P lead unit, not the forum's (office)"
    (_, subject, body), = told
    assert subject.startswith("【高风险】承诺保本保息") and subject.endswith(f" - {XYB}（见于{FORUM}）"), subject
    assert f"机构：{XYB}（P2P网络借贷，编号 xyb）" in body, body
    assert f"见于：{FORUM}（编号 forum），按名称提及归属：鑫盈宝" in body, body
    assert f"网址：{post}" in body and "【保本保息】" in body
    alerts = [a for a in hit_alerts(config) if a[0] == post]
    assert alerts and all(a[1:3] == ("forum", "xyb") for a in alerts), "filed under the institution it concerns"
    listed = [a for m in json_lines(cli("alerts", "list", "--config", str(config), "--json").stdout)
              for a in m["alerts"] if m["unit"] == "cbrc" and a["kind"] == "hit"]
    assert listed and {a["target"] for a in listed} == {"xyb"}, listed


def test_a_forum_post_naming_no_institution_routes_by_the_forum_as_before(forum_patrolled):
    config, forum, sent, _ = forum_patrolled
    post = forum.url("/t-2.html")
    told = [(unit, subject, body) for unit, subject, body in sent if post in body]
    assert [unit for unit, _, _ in told] == ["office"], told
    (_, subject, body), = told
    assert subject.endswith(f" - {FORUM}") and "见于" not in subject and "见于：" not in body, subject
    assert f"机构：{FORUM}（其他，编号 forum）" in body
    assert {a[2] for a in hit_alerts(config) if a[0] == post} == {"forum"}


def test_the_same_post_found_through_an_opinion_source_tells_no_unit_again(forum_patrolled):
    config, forum, sent, later = forum_patrolled
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            found = {(hit.url, attribution.target_id if attribution else None) for hit, attribution in session.execute(
                select(Hit, HitAttribution).outerjoin(HitAttribution, HitAttribution.hit_id == Hit.id)
                .where(Hit.target_id == "source:bbs"))}
    finally:
        db.close()
    assert {(forum.url("/t-1.html"), "xyb"), (forum.url("/t-2.html"), None)} <= found, "the source read both posts"
    assert later == [], [subject for _, subject, _ in later]
    assert [a[1] for a in hit_alerts(config)] == ["forum"] * len(hit_alerts(config)), "no alert of the source's copies"
    assert sum(forum.url("/t-1.html") in body for unit, _, body in sent if unit == "cbrc") == 1


@pytest.fixture(scope="module")
def channel_swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributed-channel")
    with SmtpSink() as sink, SiteServer(routes(platform_routes())) as platform, \
            SiteServer(routes(rogue_routes())) as rogue, \
            SiteServer(routes(search_routes(platform.base_url, rogue.base_url))) as portal:
        config = root / "patrol.yaml"
        write_config(config, [
            {"id": "xyb", "name": XYB, "aliases": ["鑫盈宝"], "business": "p2p", "urls": [platform.url("/")]},
        ], sink.port, channels=[
            {"id": "search", "name": "搜搜推广", "url": portal.base_url + "/s/{page}?wd={keyword}",
             "keywords": ["理财"], "pages": 1,
             "selectors": {"item": "div.r", "link": "h3 a", "snippet": "p.abs", "advertiser": ".adv",
                           "ad_label": ".ad-label"}},
        ])
        swept = cli("patrol", "--config", str(config), "--channels")
        assert swept.returncode == 0, swept.stdout + swept.stderr
        loaded = load_config(config)
        db = StateDB(loaded.db_url)
        try:
            deliver(loaded, db)
        finally:
            db.close()
        yield config, platform, rogue, mails(sink)


def test_an_ad_landing_on_a_registered_platform_alerts_its_lead_unit(channel_swept):
    """The same rule for an ad channel: the ad attributed to 鑫盈宝 by its landing domain."""
    config, platform, rogue, sent = channel_swept
    promo = platform.url("/promo.html")
    told = {unit for unit, _, body in sent if promo in body}
    assert "cbrc" in told and "office" not in told, told
    subject, body = next((s, b) for unit, s, b in sent if unit == "cbrc" and promo in b)
    assert subject.endswith(f" - {XYB}（见于渠道 搜搜推广）"), subject
    assert "见于：渠道 搜搜推广（编号 channel:search），按域名归属" in body, body
    rogue_told = {unit for unit, _, body in sent if rogue.url("/go?src=ad") in body}
    assert "office" in rogue_told and "cbrc" not in rogue_told, "an unregistered site's ad: by the channel, as before"
    assert {a[2] for a in hit_alerts(config) if a[0].startswith(promo)} == {"xyb"}
    assert json.loads(cli("show", "--config", str(config), "--json", str(next(
        h["id"] for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)
        if h["url"].startswith(promo)))).stdout)["attributed_to"]["id"] == "xyb"
