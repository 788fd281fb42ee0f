"""Rendering throughput and Chromium memory, and render: auto against render: always.

Run by hand:  .venv/bin/python benchmarks/render_throughput.py [--pages 200] [--rss-pages 1000]

On a generated site where one page in ten builds its claim with JavaScript:
  (a) render: always — rendered pages/s,
  (b) render: auto   — pages/s, and whether it caught the same hits as (a),
  (c) a render: always patrol of --rss-pages pages, printing the RSS of the
      process tree (Chromium included) every 100 pages: it must stay bounded.
Pages/s come from Scrapy's elapsed time in each run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from crawler.demo.server import Reply, SiteServer  # noqa: E402
from patrol_throughput import TreeRss  # noqa: E402

STATIC = "<p>{n}号产品介绍：本公司提供专业的信息服务，欢迎咨询。</p>" * 30
JS = """<div id="app"></div><script>
document.addEventListener('DOMContentLoaded', function () {{
  document.getElementById('app').textContent = '{n}号计划承诺保本保息，稳赚不赔。';
}});</script>"""


class Site:
    def __init__(self, total: int):
        self.total = total

    def page(self, n: int) -> bytes:
        body = JS.format(n=n) if n % 10 == 0 else STATIC.format(n=n)
        links = "".join(f"<a href='/p/{(n * 7 + i) % self.total}.html'>{i}</a>" for i in range(1, 6))
        return (f"<html><head><meta charset='utf-8'><title>页面{n}</title></head>"
                f"<body>{body}<nav>{links}</nav></body></html>").encode("utf-8")

    def __call__(self, request):
        path = request.path.split("?")[0]
        n = 0 if path == "/" else int(path[3:-5]) if path.startswith("/p/") and path.endswith(".html") else -1
        if 0 <= n < self.total:
            return Reply(headers={"Content-Type": "text/html; charset=utf-8"}, body=self.page(n))
        return None


def patrol(workdir: Path, url: str, pages: int, render: str, on_tick=None) -> tuple[int, float, set]:
    name = f"{render}-{pages}"
    config = workdir / f"{name}.yaml"
    config.write_text(
        f"state_dir: {name}\nallow_private_networks: true\nobey_robots: false\ntargets:\n"
        f"  - id: bench\n    name: 渲染测试\n    business: p2p\n    render: {render}\n"
        f"    max_pages: {pages}\n    max_depth: 50\n    urls: ['{url}']\n", encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(REPO), "FINPATROL_RENDER_SETTLE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "patrol", "--config", str(config)],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while on_tick and process.poll() is None:
        on_tick(process.pid)
        time.sleep(1)
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(err[-3000:])
    run = lambda *a: subprocess.run([sys.executable, "-m", "crawler.cli", *a, "--config", str(config), "--json"],  # noqa: E731
                                    cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    hits = {json.loads(line)["url"] for line in run("hits", "--limit", "100000").splitlines()}
    from crawler.config import load_config
    from crawler.store.db import StateDB
    from crawler.store.models import PatrolRun

    db = StateDB(load_config(config).db_url)
    with db.new_session() as session:
        stats = session.query(PatrolRun).order_by(PatrolRun.id.desc()).first().stats
    db.close()
    return stats.get("response_received_count", 0), float(stats["elapsed_time_seconds"]), hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rss-pages", type=int, default=1000, help="0 skips the memory curve")
    args = parser.parse_args()
    # (a) and (b) patrol the whole site, so both must meet every page and the same hits.
    with tempfile.TemporaryDirectory(prefix="finpatrol-render-") as tmp, \
            SiteServer(Site(args.pages)) as server, SiteServer(Site(max(args.rss_pages, 1))) as big_server:
        workdir = Path(tmp)
        always_n, always_s, always_hits = patrol(workdir, server.url("/"), args.pages + 1, "always")
        auto_n, auto_s, auto_hits = patrol(workdir, server.url("/"), args.pages + 1, "auto")
        print(f"(a) render: always: {always_n} pages in {always_s:.1f} s = {always_n / always_s:.2f} pages/s, "
              f"{len(always_hits)} hits")
        print(f"(b) render: auto  : {auto_n} pages in {auto_s:.1f} s = {auto_n / auto_s:.2f} pages/s, "
              f"{len(auto_hits)} hits; same hits as always: {auto_hits == always_hits}")
        print(f"    auto is {always_s / auto_s:.1f}x faster than always")
        if args.rss_pages:
            curve: list[tuple[int, int]] = []
            state = {"sampler": None}
            before = len(big_server.requests)

            def tick(pid: int) -> None:
                sampler = state["sampler"] = state["sampler"] or TreeRss(pid)
                fetched = len(big_server.requests) - before
                if not curve or fetched - curve[-1][0] >= 100:
                    curve.append((fetched, sampler.peak))

            n, seconds, _ = patrol(workdir, big_server.url("/"), args.rss_pages, "always", on_tick=tick)
            if state["sampler"]:
                state["sampler"].stop()
            print(f"(c) {n} rendered pages in {seconds:.0f} s; peak RSS of the process tree so far (pages served → MB):")
            for fetched, rss in curve:
                print(f"    {fetched:6d} → {rss / 2**20:6.0f}")


if __name__ == "__main__":
    main()
