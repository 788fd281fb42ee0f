"""Patrol throughput on a large local site, beside a bare Scrapy crawl of the same site.

Run by hand:  .venv/bin/python benchmarks/patrol_throughput.py [--pages 2000] [--rss-pages 10000]
                  [--rounds 1] [--naive]

Measures, in one run and on the same generated site (20–60 KB Chinese pages,
~60 links each, served on 127.0.0.1 from memory by ``lean_server``, which costs the
machine little CPU, as a remote site would):
  (a) a bare Scrapy crawl (link following only, no pipelines; the site patrol's values of
      the concurrency, AutoThrottle and other ENGINE_SETTINGS), run just before and just
      after (b): this VM's speed drifts by up to a third within minutes, and the ratio is
      taken against the mean of the two, which cancels a steady drift during (b),
  (b) the full patrol (extraction, classification, state DB, search index, evidence);
      with --rounds N, N full patrols (each into a new state dir) between N + 1 bare
      crawls, and the median and minimum of their rates and ratios,
  (c) a second patrol of the unchanged site, the server answering conditional
      requests with 304 Not Modified (it sends ETags, as static servers do),
  (c') a third one with the server sending no ETags (every page downloaded again),
  (c'') a fourth one, no ETags and a comment that changes on every request at the end of
      every page, as pages built per request carry a timestamp: every page is extracted
      and classified again, but its unchanged text is not cut into search terms again,
  (n) with --naive, a naive pipeline for scale: the bare crawl with trafilatura.extract
      (its defaults) and jieba.lcut in the spider's callback, on the reactor thread;
      one run after the others, compared with the last full patrol, not drift-corrected,
and peak RSS of the whole process tree (crawler, worker processes, forkserver) of a
larger patrol. Pages/s come from Scrapy's own elapsed time, so process start-up is
excluded on both sides. Prints the numbers and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lean_server import LeanServer  # noqa: E402

WORDS = (
    "公司 平台 理财 产品 投资 收益 风险 管理 服务 客户 资金 银行 存管 合规 信息 披露 项目 借款 出借 期限 "
    "利率 年化 还款 按时 稳健 安全 技术 团队 发展 战略 市场 行业 监管 政策 金融 互联网 科技 创新 用户 体验 "
    "新闻 公告 活动 合作 伙伴 介绍 联系 我们 帮助 中心 常见 问题 注册 登录 账户 充值 提现 记录 协议 条款"
).split()
CLAIMS = ("本平台承诺保本保息，稳赚不赔。", "年化收益率高达18%，月息2分。", "活期理财随存随取，资金池运作。")
BARE_SPIDER = '''
import scrapy
class Bare(scrapy.Spider):
    name = "bare"
    custom_settings = {"ROBOTSTXT_OBEY": False, "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False,
                       **ENGINE_SETTINGS}
    def __init__(self, start, limit, **kw):
        super().__init__(**kw); self.start_url = start; self.limit = int(limit); self.seen = set()
    async def start(self):
        yield scrapy.Request(self.start_url)
    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if url not in self.seen and len(self.seen) < self.limit:
                self.seen.add(url); yield scrapy.Request(url)
class Naive(Bare):
    name = "naive"
    def parse(self, response):
        import jieba, trafilatura
        text = trafilatura.extract(response.text) or ""
        jieba.lcut(text)
        yield from super().parse(response)
'''


# The site patrol's Scrapy settings that shape the crawl itself, given to the bare crawl too:
# the two crawls differ in what is done with a page, not in how pages are fetched. The
# patrol's CONCURRENT_ITEMS alone makes a bare crawl about 1.4x faster than Scrapy's default.
ENGINE_SETTINGS = ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "CONCURRENT_ITEMS", "AUTOTHROTTLE_ENABLED",
                   "AUTOTHROTTLE_START_DELAY", "AUTOTHROTTLE_TARGET_CONCURRENCY", "WARN_ON_GENERATOR_RETURN_VALUE")


def engine_settings() -> dict:
    """``ENGINE_SETTINGS`` as the site patrol spider runs: ``crawler.settings`` and its own."""
    from scrapy.settings import Settings

    import crawler.settings
    from spiders.site_patrol import SitePatrolSpider

    settings = Settings()
    settings.setmodule(crawler.settings, priority="project")
    settings.setdict(SitePatrolSpider.custom_settings, priority="spider")
    return {name: settings[name] for name in ENGINE_SETTINGS}


def make_page(n: int, total: int) -> bytes:
    rng = random.Random(n)
    size = rng.randint(20_000, 60_000)
    paragraphs, length = [], 0
    if rng.random() < 0.1:  # about one page in ten carries a claim, as on a real platform site
        paragraphs.append(f"<p>{rng.choice(CLAIMS)}</p>")
    while length < size:
        sentence = "，".join(rng.choice(WORDS) + rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + "。"
        paragraphs.append(f"<p>{sentence * 3}</p>")
        length += len(paragraphs[-1].encode("utf-8"))
    links = "".join(f'<li><a href="/p/{rng.randrange(total)}.html">链接{i}</a></li>' for i in range(60))
    nav = "".join(f'<a href="/p/{i}.html">栏目{i}</a>' for i in range(10))
    return (
        f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>页面{n} - 测试金融平台</title></head>"
        f"<body><header><nav>{nav}</nav></header><article><h1>页面{n}</h1>{''.join(paragraphs)}</article>"
        f"<aside><ul>{links}</ul></aside><footer>重庆测试金融信息服务有限公司 渝ICP备16000000号</footer></body></html>"
    ).encode("utf-8")


class Site:
    """Pages are generated once and served from memory; ETags and 304s while ``validators``."""

    def __init__(self, total: int):
        self.total = total
        self.validators = True
        self.stamped, self.served = False, 0
        self.pages = [make_page(n, total) for n in range(total)]
        home = "".join(f'<a href="/p/{i}.html">{i}</a>' for i in range(0, total, max(1, total // 200)))
        self.home = f"<html><head><title>首页</title></head><body>{home}</body></html>".encode()

    def body(self, path: str) -> bytes | None:
        if path == "/":
            return self.home
        if path.startswith("/p/") and path.endswith(".html") and path[3:-5].isdigit():
            n = int(path[3:-5])
            if n < self.total:
                return self.pages[n]
        return None

    def serve(self) -> LeanServer:
        return LeanServer(self.body, lambda: self.validators, self.stamp)

    def stamp(self) -> bytes:
        """While ``stamped`` (only without validators), a comment that differs on every request."""
        if not self.stamped:
            return b""
        self.served += 1
        return b"<!-- generated %d -->" % self.served


class TreeRss:
    """Samples the resident memory of a process and all its descendants."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [self.pid], [self.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def _run(self):
        while not self._stop.wait(0.25):
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self.thread.join()
        return self.peak


def bare_crawl(url: str, limit: int, workdir: Path, spider: str = "Bare") -> tuple[int, float]:
    """Pages and seconds of the ``spider`` of BARE_SPIDER (``Bare`` or ``Naive``) on the site."""
    (workdir / "bare_spider.py").write_text(BARE_SPIDER.replace("**ENGINE_SETTINGS", repr(engine_settings())[1:-1]))
    stats_file = workdir / "bare_stats.json"
    warm = ("import jieba, trafilatura; jieba.setLogLevel(60); jieba.dt.tmp_dir = %r; jieba.initialize()\n"
            % str(workdir)) if spider == "Naive" else ""  # loaded before the clock starts; cache in workdir
    code = (
        "import json,sys; sys.path.insert(0, %r)\n%s"
        "from scrapy.crawler import CrawlerProcess\nfrom bare_spider import %s as Spider\n"
        "p = CrawlerProcess({'LOG_LEVEL': 'WARNING'}); c = p.create_crawler(Spider)\n"
        "p.crawl(c, start=%r, limit=%d); p.start()\n"
        "s = c.stats.get_stats(); json.dump([s.get('response_received_count', 0), s['elapsed_time_seconds']], open(%r, 'w'))\n"
    ) % (str(workdir), warm, spider, url, limit, str(stats_file))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=workdir)
    pages, seconds = json.loads(stats_file.read_text())
    return pages, seconds


def rate(pages: int, seconds: float) -> float:
    """Pages/s of a (pages, seconds) pair as bare_crawl and patrol return them."""
    return pages / seconds


def patrol(config: Path, sample_rss: bool = False) -> tuple[int, float, int]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "patrol", "--config", str(config)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    sampler = TreeRss(process.pid) if sample_rss else None
    _, err = process.communicate()
    peak = sampler.stop() if sampler else 0
    if process.returncode:
        raise SystemExit(f"patrol failed:\n{err[-3000:]}")
    runs = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "runs", "--config", str(config), "--json", "--limit", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout
    sys.path.insert(0, str(REPO))
    from crawler.config import load_config
    from crawler.store.db import StateDB
    from crawler.store.models import PatrolRun

    db = StateDB(load_config(config).db_url)
    with db.new_session() as session:
        run = session.query(PatrolRun).order_by(PatrolRun.id.desc()).first()
        stats = run.stats
    db.close()
    pages = json.loads(runs.splitlines()[0])["targets"]["bench"]["pages"]
    return pages, float(stats["elapsed_time_seconds"]), peak


def write_config(workdir: Path, url: str, pages: int, name: str) -> Path:
    config = workdir / f"{name}.yaml"
    config.write_text(
        f"state_dir: {name}-state\nallow_private_networks: true\nobey_robots: false\n"
        f"targets:\n  - id: bench\n    name: 测试金融平台\n    business: p2p\n    render: never\n"
        f"    max_pages: {pages}\n    max_depth: 20\n    urls: ['{url}']\n",
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--rss-pages", type=int, default=10000, help="0 skips the memory run")
    parser.add_argument("--rounds", type=int, default=1, help="full patrols, each between two bare crawls")
    parser.add_argument("--naive", action="store_true", help="also run the naive pipeline (n)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="finpatrol-bench-") as tmp:
        workdir = Path(tmp)
        site = Site(max(args.pages, args.rss_pages))
        mean_kb = sum(map(len, site.pages[: args.pages])) / args.pages / 1024
        with site.serve() as server:
            print(f"site: {site.total} pages, mean {mean_kb:.0f} KB, served at {server.base_url}")
            bare = [rate(*bare_crawl(server.url("/"), args.pages, workdir))]
            full: list[float] = []
            ratios: list[float] = []
            for n in range(args.rounds):  # bare, full, bare, full, ..., bare: each full between two bares
                config = write_config(workdir, server.url("/"), args.pages, f"full{n}")
                full_pages, full_s, _ = patrol(config)
                full.append(rate(full_pages, full_s))
                bare.append(rate(*bare_crawl(server.url("/"), args.pages, workdir)))
                ratios.append(full[-1] / ((bare[-2] + bare[-1]) / 2))
                if args.rounds > 1:
                    print(f"round {n + 1} of {args.rounds}")
                print(f"(a) bare Scrapy crawl : {bare[-2]:.1f} pages/s before (b), {bare[-1]:.1f} after")
                print(f"(b) full patrol       : {full_pages} pages in {full_s:.1f} s = {full[-1]:.1f} pages/s")
                print(f"    ratio full/bare   : {ratios[-1]:.2f}x (against the mean of the two bare crawls)")
            if args.rounds > 1:
                print(f"    over {args.rounds} rounds: full patrol median {statistics.median(full):.1f} pages/s "
                      f"(min {min(full):.1f}), ratio median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x)")
            again_pages, again_s, _ = patrol(config)
            site.validators = False
            whole_pages, whole_s, _ = patrol(config)
            site.stamped = True
            stamped_pages, stamped_s, _ = patrol(config)
            site.validators, site.stamped = True, False
            print(f"(c) unchanged re-patrol: {again_pages} pages in {again_s:.1f} s = "
                  f"{again_s / full_s:.0%} of the last full patrol's time (304 Not Modified)")
            print(f"(c') the same, no ETags: {whole_pages} pages in {whole_s:.1f} s = "
                  f"{whole_s / full_s:.0%} of the last full patrol's time (pages downloaded again)")
            print(f"(c'') and a timestamp in every page: {stamped_pages} pages in {stamped_s:.1f} s = "
                  f"{stamped_s / full_s:.0%} of the last full patrol's time (extracted and classified again)")
            if args.naive:
                naive_pages, naive_s = bare_crawl(server.url("/"), args.pages, workdir, "Naive")
                naive = rate(naive_pages, naive_s)
                print(f"(n) naive pipeline    : {naive_pages} pages in {naive_s:.1f} s = {naive:.1f} pages/s; "
                      f"last full patrol / naive {full[-1] / naive:.2f}x")
            if args.rss_pages:
                big = write_config(workdir, server.url("/"), args.rss_pages, "big")
                big_pages, big_s, peak = patrol(big, sample_rss=True)
                print(f"(d) {big_pages}-page patrol: {big_s:.0f} s, peak RSS of the process tree "
                      f"{peak / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
