"""``finpatrol demo``: serve the bundled demo institutions on 127.0.0.1 and patrol them twice.

The demo works on a copy of the bundled sites in its own state dir (default
``var/demo``), starting afresh each run. Patrol 1 finds the claims (one only
after Chromium renders the page); the demo then edits its copy as a platform
under rectification would — one claim removed, one added, one page deleted —
and patrol 2 shows the changes and the rectified hit. Alerts go to ``.eml``
files in the outbox, and the JavaScript hit's evidence is exported.
Each patrol runs as a subprocess, because Twisted's reactor cannot restart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import yaml

from crawler.alerts.config import DEFAULT_UNITS
from crawler.commands.common import console, load_or_exit, open_db
from crawler.demo.server import SITES_DIR, serve_demo_sites

MARKER = ".finpatrol-demo"
DEMO_TARGETS = {  # id: (name, aliases, business, further settings)
    "xinyingbao": ("重庆鑫盈宝网络科技有限公司", ["鑫盈宝"], "p2p", {}),
    "zhongchou": ("重庆众筹通股权投资有限公司", ["众筹通"], "crowdfunding", {}),
    "compliantbank": ("江津农商银行理财频道", [], "asset_management", {}),
    "posagent": ("重庆快付通信息技术有限公司", ["快付通"], "payment", {}),
    "gbkfinance": ("重庆金鼎财富管理有限公司", ["金鼎财富"], "asset_management", {}),
    "jsplatform": ("重庆云端普惠金融信息服务有限公司", ["云端普惠"], "p2p", {}),
    "forum": ("江津生活论坛", [], "other", {"kind": "forum"}),  # its posts are about others
}
# The rectification between the two patrols: (site, page, old text, new text); None deletes.
EDITS = (
    ("xinyingbao", "security.html", "风险准备金先行赔付", "资金由合作银行存管"),
    ("xinyingbao", "about.html", "</body>", "<p>新客专享：资金池产品随存随取，稳赚不赔。</p></body>"),
    ("zhongchou", "project-1003.html", None, None),
)


# Sites that are not registered institutions: a search portal with ad slots and
# classifieds, an unregistered platform its ads lead to, a complaint board with a feed.
CHANNEL_SITES = ("sousuo", "jinniubao", "tousu")


def demo_channels(urls: dict[str, str]) -> dict:
    """The demo's ``channels:`` and ``sources:`` over the bundled portal, board and forum."""
    search, board, forum = urls.get("sousuo"), urls.get("tousu"), urls.get("forum")
    channels, sources = [], []
    if search:
        channels += [
            {"id": "sousuo", "name": "搜搜网搜索推广", "kind": "search",
             "url": search + "/s-{page}.html?wd={keyword}", "keywords": ["保本理财"], "pages": 2,
             "selectors": {"item": "div.result", "title": "h3 a", "link": "h3 a", "snippet": "p.abstract",
                           "advertiser": ".advertiser", "ad_label": ".ad-label", "date": ".date"}},
            {"id": "sousuo_fenlei", "name": "搜搜分类信息 投资理财", "kind": "classifieds",
             "url": search + "/fenlei.html",
             "selectors": {"item": "li.post", "link": "a.t", "advertiser": ".who", "date": ".when"}},
        ]
    if board:
        sources += [
            {"id": "tousu", "name": "江津消费投诉平台", "kind": "complaint", "url": board + "/list-1.html",
             "pages": 2, "selectors": {"item": "tr.complaint", "link": "td.subject a", "author": "td.user",
                                       "date": "td.time", "replies": "td.count", "next_page": "a.next"}},
            {"id": "tousu_news", "name": "江津金融消费新闻 RSS", "kind": "feed", "url": board + "/feed.xml"},
        ]
    if forum:
        sources.append(
            {"id": "forum_licai", "name": "江津生活论坛 投资理财", "kind": "forum",
             "url": forum + "/forum-licai-{page}.html", "pages": 2,
             "selectors": {"item": "tr.thread-row", "link": "td.title a",
                           "author": "xpath:./td[@class='author']/text()[1]", "date": "time.publish-time",
                           "replies": "em.replies"}})
    return {"channels": channels, "sources": sources}


def demo_config(urls: dict[str, str]) -> dict:
    targets = []
    for site_id, base_url in urls.items():
        if site_id in CHANNEL_SITES:
            continue
        name, aliases, business, settings = DEMO_TARGETS.get(site_id, (site_id, [], "other", {}))
        targets.append({
            "id": site_id, "name": name, "aliases": aliases, "business": business,
            "urls": [base_url + "/"], "max_pages": 50, "max_depth": 3,
        } | settings)
    # every lead unit gets a demo address, so the .eml files show who would receive what
    routing = {"units": {unit: {"emails": [f"{unit}@demo.invalid"]} for unit in DEFAULT_UNITS}}
    return ({"state_dir": ".", "allow_private_networks": True, "targets": targets} | demo_channels(urls)
            | {"routing": routing})


def fresh_state(state_dir: Path) -> Path:
    """Start afresh (only ever deleting a directory the demo made) with a copy of the sites."""
    if state_dir.exists() and (state_dir / MARKER).exists():
        shutil.rmtree(state_dir)
    elif state_dir.exists() and any(state_dir.iterdir()):
        raise click.ClickException(f"{state_dir} is not empty and was not made by the demo")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / MARKER).write_text("made by `finpatrol demo`; deleted by the next demo run\n")
    sites = state_dir / "sites"
    shutil.copytree(SITES_DIR, sites, ignore=shutil.ignore_patterns("README.md", "__pycache__"))
    return sites


def edit_sites(sites: Path) -> None:
    for site, page, old, new in EDITS:
        path = sites / site / page
        if old is None:
            path.unlink()
        else:
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def patrol_subprocess(config_file: Path, *extra: str) -> int:
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
    return subprocess.call([sys.executable, "-m", "crawler.cli", "patrol", "--config", str(config_file), *extra],
                           env=env)


@click.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"),
              show_default=True, help="Where the demo keeps its sites, config, state DB, evidence and outbox.")
def demo(state_dir: Path):
    """Serve the bundled demo sites on 127.0.0.1 and patrol them twice (no network needed)."""
    state_dir = state_dir.resolve()
    ports_file = state_dir.parent / (state_dir.name + ".ports.json")
    ports = json.loads(ports_file.read_text()) if ports_file.exists() else {}
    sites = fresh_state(state_dir)
    config_file = state_dir / "patrol.yaml"
    with serve_demo_sites(ports=ports, sites_dir=sites) as servers:
        ports_file.write_text(json.dumps({k: s.port for k, s in servers.items()}))
        urls = {site_id: server.base_url for site_id, server in servers.items()}
        config = demo_config(urls)
        config_file.write_text(
            "# Generated by `finpatrol demo`: the bundled demo sites served on 127.0.0.1.\n"
            + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        # Count the targets patrolled, not the servers: the channel sites are not institutions.
        console.print(f"[bold]Patrol 1[/]: {len(config['targets'])} demo institutions on 127.0.0.1 "
                      f"(config {config_file})")
        first = patrol_subprocess(config_file)
        edit_sites(sites)
        console.print("\n[bold]Patrol 2[/], after the demo edited the sites: a claim removed, one added, a page deleted")
        second = patrol_subprocess(config_file)
        console.print("\n[bold]Channels and opinion sources[/]: search ads, classifieds, a forum board, "
                      "a complaint board and a news feed")
        third = patrol_subprocess(config_file, "--channels", "--sources")
    if first or second or third:
        raise SystemExit(1)
    report(load_or_exit(str(config_file)), state_dir)


def report(config, state_dir: Path) -> None:
    """What the demo produced: JavaScript hit with its screenshot, changes, alert mail."""
    from crawler.alerts.service import deliver
    from crawler.evidence.archive import evidence_root
    from crawler.evidence.export import export_hit
    from crawler.store.queries import list_hits
    from crawler.store.search import Filters

    with open_db(config, create=True) as db:
        js_hits = list_hits(db, Filters(targets=("jsplatform",)))
        if js_hits:
            out = state_dir / "export" / f"hit-{js_hits[0]['id']}"
            manifest = export_hit(db, evidence_root(config.state_dir), js_hits[0]["id"], out)
            shots = [name for name in manifest.get("files", {}) if name.endswith(".png")]
            console.print(f"\nCaught only after rendering: hit {js_hits[0]['id']} {js_hits[0]['url']}")
            console.print(f"  evidence exported to {out}" + (f", screenshot {out / shots[0]}" if shots else ""))
        delivered = deliver(config, db)
    console.print(f"{len(delivered.sent)} alert mail(s) → {delivered.where}"
                  + (f", {len(delivered.unaddressed)} for units without an address" if delivered.unaddressed else ""))
    cfg = f"--config {config.source}"
    console.print("\nNext, try:")
    for line in (
        f"finpatrol hits {cfg}",
        f"finpatrol search {cfg} 保本保息",
        f"finpatrol show {cfg} <HIT_ID>",
        f"finpatrol changes {cfg}",
        f"finpatrol evidence verify {cfg}",
        f"finpatrol alerts list {cfg}",
        f"finpatrol runs {cfg}",
        f"finpatrol candidates list {cfg}",
        f"finpatrol coverage {cfg}",
        f"finpatrol dossier xinyingbao {cfg} --out {state_dir / 'dossier-xinyingbao.html'}",
        f"finpatrol report {cfg} --since <DATE> --out {state_dir / 'report.html'}",
    ):
        console.print("  " + line, soft_wrap=True)


COMMANDS = (demo,)
