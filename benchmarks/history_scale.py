"""Does finpatrol stay fast after years of patrols? Each step timed on a short and a long history.

Run by hand:  .venv/bin/python benchmarks/history_scale.py [--scale 0.1] [--small-days 30] [--big-days 730]
              [--keep FOLDER [--reuse]]

Builds two state DBs in a temporary folder, through the product's own store paths
(``save_pages``, ``start_run``/``finish_run``, ``mark_gone``, the alert service with a
file outbox, ``prune``, the search queue): one of ``--small-days`` and one of
``--big-days`` of daily patrols, both ending now. ``--scale`` 1.0 is a district office's
150 institutions; a site starts with 40 pages and each day gets one new page and one
edited page (a new version), a patrol fetching its newest pages and those with open hits
(the unchanged pages it would fetch besides only move ``last_seen``), with now and then a
claim added, reworded or rectified, a page gone, a site offline for days. An ad channel
and an opinion source are patrolled once a day, their hits attributed to the institutions;
serve's alert pass and housekeeping run every third day. The big history takes about a
quarter of an hour to build at the default scale (0.1: 15 institutions; its cost is mostly
per day, not per institution); ``--keep`` keeps both, and ``--reuse`` times them again, as
built, e.g. with another version of finpatrol (whose StateDB adds what indexes it lacks).
Then the same work is timed on both: one more day's site patrol (the
pipeline's reads before crawling, storing a fixed set of pages), serve's periodic work
(an alert pass after the patrol and an idle one, ``prune``, the search queue's reads for
the patrol's new documents) and the investigator's commands through the real CLI. Each
read is timed three times (the fastest kept). A step whose ratio big/small grows with
the history, while what it reads does not, is a finding. Nothing leaves 127.0.0.1: there
is no network use at all.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifiers import classify  # noqa: E402
from classifiers.tokenize import index_terms  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from crawler.alerts.service import deliver  # noqa: E402
from crawler.cli import main as finpatrol  # noqa: E402
from crawler.config import load_config  # noqa: E402
from crawler.discovery.models import HitAttribution, ListedPage, ensure_schema  # noqa: E402
from crawler.housekeeping import daily, prune  # noqa: E402
from crawler.items import PageItem  # noqa: E402
from crawler.store import elastic_queue as queue  # noqa: E402
from crawler.store.db import StateDB  # noqa: E402
from crawler.store.elastic_sync import build  # noqa: E402
from crawler.store.pages import known_pages, open_hit_urls, revalidations, save_pages, stale_verdicts  # noqa: E402
from crawler.store.changes import mark_gone  # noqa: E402
from crawler.store.runs import finish_run, start_run, sync_targets  # noqa: E402

STAMP = "bench-rules"
BUILT = "built.db"
"""The state DB as the history left it, kept beside the one the timed steps change (``--reuse``)."""
SITE_PAGES, RECENT, BATCH = 40, 5, 32
LISTED, ALERT_EVERY = 6, 3
"""Results of an ad channel's or an opinion source's daily patrol; days between alert passes."""
CLAIMS = ("本平台承诺保本保息，稳赚不赔。", "年化收益率高达18%，远超银行。", "新手专享标，注册即送888元红包，年化收益15%。",
          "资金池运作，随存随取，保本保收益。", "投资房产众筹，年化收益20%，到期回购。")
OPINION = ("平台已暂停提现，众多投资人无法取回本金。", "投资人集体维权，聚集要求兑付本息。")
PLAIN = ("我们是一家信息中介平台，理财非存款，产品有风险，投资须谨慎。", "地址：重庆市江津区几江街道滨江新城。",
         "客服热线工作时间为每日九点至二十一点，节假日照常。", "小微企业主凭营业执照即可申请信用贷款。",
         "资金由第三方银行存管，借款项目均经过严格风控审核。", "本公司近期举办客户答谢会，欢迎各位参加。")
PROBE = {"touch": 20, "changed": 2, "new": 2}
"""What the timed patrol fetches of each target, the same on both DBs: unchanged pages, edited, new."""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Site:
    """One target's pages as the simulated site serves them: url → (version, claim index or None)."""

    def __init__(self, target_id: str):
        self.id, self.pages, self.gone, self.stored, self.next = target_id, {}, set(), set(), 0
        while len(self.pages) < SITE_PAGES:
            self.add(None)

    def add(self, claim: int | None) -> str:
        url = f"http://{self.id}.example/news/{self.next}.html"
        self.next += 1
        self.pages[url] = (0, claim)
        return url

    def live(self) -> list[str]:
        return [u for u in self.pages if u not in self.gone]


class History:
    """Builds one state DB day by day through the product's store, alert and housekeeping code."""

    def __init__(self, folder: Path, targets: int, start: datetime, seed: int = 7):
        self.folder, self.rng, self.start = folder, random.Random(seed), start
        self.ids = [f"t{i:03d}" for i in range(targets)]
        self.config = load_config(write_config(folder, self.ids))
        self.db = StateDB(self.config.db_url)
        ensure_schema(self.db)
        sync_targets(self.db, self.config.targets)
        self.sites = {t: Site(t) for t in self.ids}
        self.down: dict[str, int] = {}
        self.verdicts = {}
        self.posts = 0
        self.saved: list = []
        """What was stored since the documents were last queued for the search cluster."""

    def __getstate__(self) -> dict:
        """What ``--reuse`` keeps of the simulation besides the state DB file."""
        return {k: v for k, v in self.__dict__.items() if k not in ("db", "config")}

    def reopen(self) -> None:
        self.config = load_config(self.folder / "patrol.yaml")
        self.db = StateDB(self.config.db_url)

    def verdict(self, text: str) -> dict:
        """The classifier's verdict on the claim the text makes, if any (the rest of a text says nothing)."""
        said = next((c for c in CLAIMS + OPINION if c in text), "")
        if said not in self.verdicts:
            self.verdicts[said] = classify(said, kind="platform_page").to_dict()
        return self.verdicts[said]

    def item(self, target_id: str, url: str, when: datetime, text: str | None, kind: str = "platform_page",
             **listing) -> PageItem:
        """A fetched page: ``text`` None is an unchanged one (304 or the same bytes)."""
        common = dict(target_id=target_id, url=url, final_url=url, status=200, headers={}, encoding="utf-8",
                      fetched_at=when.isoformat(), kind=kind, **listing)
        if text is None:
            return PageItem(body=b"", unchanged=True, **common)
        title = text[:12]
        return PageItem(body=text.encode(), sha256=sha(text), title=title, text=text, text_fingerprint=sha(text),
                        title_tokens=index_terms(title), text_tokens=index_terms(text),
                        verdict=self.verdict(text), verdict_by=STAMP, **common)

    def text(self, url: str, version: int, claim: int | None) -> str:
        body = "".join(self.rng.choice(PLAIN) for _ in range(4))
        said = CLAIMS[claim] if claim is not None else ""
        return f"{url.rsplit('/', 1)[-1]} 第{version}版。{body}{said}"

    def site_items(self, site: Site, when: datetime, touch: int, changed: int, new: int,
                   revisit: bool = True) -> list[PageItem]:
        """One patrol of ``site``: its ``touch`` newest pages (and those with claims) unchanged,
        ``changed`` pages edited (claims added, reworded, removed), ``new`` pages; with ``revisit``
        each claim is rectified with a chance of 1 in 50 a day (the office's letters work)."""
        live = site.live()
        edited = {url: None for url in self.rng.sample(live, min(changed, len(live)))}
        if revisit:
            edited.update((u, None) for u in live if site.pages[u][1] is not None and self.rng.random() < 0.02)
        items = []
        for url in edited:
            version, claim = site.pages[url]
            roll = self.rng.random()
            if claim is not None and (roll < 0.4 or len(edited) > changed):
                claim = None  # rectified
            elif roll < 0.1 or claim is not None and roll < 0.6:
                claim = self.rng.randrange(len(CLAIMS))  # a claim added or reworded
            site.pages[url] = (version + 1, claim)
            items.append(self.item(site.id, url, when, self.text(url, version + 1, claim)))
        for _ in range(new):
            url = site.add(self.rng.randrange(len(CLAIMS)) if self.rng.random() < 0.05 else None)
            items.append(self.item(site.id, url, when, self.text(url, 0, site.pages[url][1])))
        fetched = set(edited) | {i.url for i in items}
        unchanged = live[-touch:] + ([u for u in live if site.pages[u][1] is not None] if revisit else [])
        for url in dict.fromkeys(unchanged):
            if url not in fetched:  # a page never fetched yet comes whole
                stored = url in site.stored
                items.append(self.item(site.id, url, when, None if stored else self.text(url, *site.pages[url])))
        site.stored.update(item.url for item in items)
        return items

    def store(self, items: list[PageItem], run_id: int) -> list:
        """In batches of the store pipeline's size, one transaction each; the documents queued."""
        saved = []
        for start in range(0, len(items), BATCH):
            saved += save_pages(self.db, items[start:start + BATCH], run_id)
        self.saved += saved
        return saved

    def site_patrol(self, when: datetime, touch: int, changed: int, new: int, revisit: bool = True) -> int:
        run_id = start_run(self.db, "site_patrol", when, targets=self.ids)
        per_target, gone, items = {}, {}, []
        for site in self.sites.values():
            if self.down.get(site.id, 0) > 0 or self.rng.random() < 0.002:  # offline for a few days
                self.down[site.id] = self.down.get(site.id) or self.rng.randint(2, 6)
                self.down[site.id] -= 1
                per_target[site.id] = {"pages": 0, "failed": 3, "hits": 0, "new_hits": 0, "errors": {"refused": 3}}
                continue
            items += self.site_items(site, when, touch, changed, new, revisit)
            if self.rng.random() < 1 / 7 and len(site.live()) > SITE_PAGES // 2:
                url = self.rng.choice(site.live()[:-RECENT])
                site.gone.add(url)
                gone[site.id] = [url]
        for item, saved in zip(items, self.store(items, run_id)):
            counts = per_target.setdefault(item.target_id, {"pages": 0, "failed": 0, "hits": 0, "new_hits": 0,
                                                            "errors": {}})
            counts["pages"] += 1
            counts["hits"] += bool(saved.hit_id)
            counts["new_hits"] += saved.new_hit
        mark_gone(self.db, run_id, gone, when)
        finish_run(self.db, run_id, "finished", stats(per_target, when), per_target)
        return run_id

    def listing(self, spider: str, origin: str, when: datetime) -> None:
        """One ad channel or opinion source patrol: results seen before and new ones, attributed."""
        store_id = f"{origin}:{'sousuo' if origin == 'channel' else 'forum'}"
        run_id = start_run(self.db, spider, when, targets=[store_id])
        items = []
        for _ in range(LISTED):
            self.posts += 1
            if origin == "channel":
                said = CLAIMS[self.rng.randrange(len(CLAIMS))] if self.rng.random() < 0.4 else PLAIN[0]
                url, kind = f"http://ad{self.posts % 400}.example/landing?{self.posts}", "ad"
            else:
                said = OPINION[self.rng.randrange(len(OPINION))] if self.rng.random() < 0.1 else PLAIN[1]
                url, kind = f"http://forum.example/thread/{self.posts}", "forum"
            owner = self.rng.choice(self.ids)
            items.append(self.item(store_id, url, when, f"{owner} {said}", kind=kind, origin=origin,
                                   origin_id=store_id.split(":")[1]))
        saved = self.store(items, run_id)
        with self.db.new_session() as session, session.begin():
            for item, result in zip(items, saved):
                owner = item.text.split(" ", 1)[0]
                session.merge(ListedPage(page_id=result.page_id, origin=origin, origin_id=item.origin_id,
                                         kind=item.kind, list_url="http://list.example/", keyword="理财",
                                         attributed_target=owner, attribution_reason="name",
                                         attribution_detail=owner, last_seen=when))
                if result.hit_id:
                    session.merge(HitAttribution(hit_id=result.hit_id, page_id=result.page_id, target_id=owner,
                                                 reason="name", detail=owner, origin=origin,
                                                 origin_id=item.origin_id, at=when))
        counts = {store_id: {"pages": len(saved), "failed": 0, "hits": sum(1 for s in saved if s.hit_id),
                             "new_hits": sum(1 for s in saved if s.new_hit), "errors": {}}}
        finish_run(self.db, run_id, "finished", stats(counts, when), counts)

    def queue(self) -> None:
        """Queue the day's documents for the search cluster and acknowledge them, as a sync would."""
        saved, self.saved = self.saved, []
        queue.enqueue(self.db, [("page", s.page_id) for s in saved] + [("hit", s.hit_id) for s in saved if s.hit_id])
        while batch := queue.take(self.db, 500):
            queue.mark_indexed(self.db, [(p, f"finpatrol-{p.kind}s-000001") for p in batch])

    def day(self, when: datetime, first: bool = False) -> None:
        """A day's patrols; every ``ALERT_EVERY`` days the alert pass and housekeeping serve does (more
        often would add little history and most of the time it takes to build)."""
        self.listing("ad_channel", "channel", when)
        self.listing("opinion", "source", when + timedelta(hours=12))
        self.site_patrol(when + timedelta(hours=2), SITE_PAGES if first else RECENT, 1, 1)
        self.queue()
        if (when - self.start).days % ALERT_EVERY == ALERT_EVERY - 1:
            deliver(self.config, self.db, now=when + timedelta(hours=23))
            daily(self.config, self.db, now=when + timedelta(hours=23, minutes=30))



def stats(per_target: dict, when: datetime) -> dict:
    """Scrapy stats as a run records them: a few hundred keys."""
    out = {"start_time": when.isoformat(), "finish_reason": "finished", "downloader/request_count": 0}
    for target_id, counts in per_target.items():
        for key, value in counts.items():
            if key != "errors":
                out[f"patrol/target/{target_id}/{key}"] = value
                out["downloader/request_count"] += value
    return out


def write_config(folder: Path, ids: list[str]) -> Path:
    document = {
        "state_dir": "state",
        "alerts": {"quiet_hours": None},
        "retention": {"crawl_logs_days": 30},
        "targets": [{"id": t, "name": f"重庆{t}网络科技有限公司", "business": "p2p",
                     "urls": [f"http://{t}.example/"]} for t in ids],
    }
    path = folder / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def build_history(folder: Path, targets: int, days: int, now: datetime) -> History:
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    history = History(folder, targets, start)
    history.end = now
    began = time.perf_counter()
    for n in range(days):
        history.day(start + timedelta(days=n), first=n == 0)
        if n % 50 == 49:
            print(f"  {folder.name}: day {n + 1}/{days} ({time.perf_counter() - began:.0f} s)", flush=True)
    history.db.close()
    shutil.copyfile(folder / "state" / "finpatrol.db", folder / BUILT)  # closed: the WAL is checkpointed
    (folder / "history.pickle").write_bytes(pickle.dumps(history))
    history.reopen()
    return history


def reused(folder: Path) -> History:
    """A history built earlier (``--keep``), its state DB as it was built: to time other code on it."""
    shutil.copyfile(folder / BUILT, folder / "state" / "finpatrol.db")
    for extra in ("-wal", "-shm"):
        (folder / "state" / f"finpatrol.db{extra}").unlink(missing_ok=True)
    history = pickle.loads((folder / "history.pickle").read_bytes())
    history.folder = folder
    history.reopen()
    return history


def best_of(step, times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        began = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - began)
    return best


def run_cli(config: Path, *args: str):
    def step():
        result = CliRunner().invoke(finpatrol, [*args, "--config", str(config)])
        if result.exit_code != 0:
            raise SystemExit(f"finpatrol {' '.join(args)} failed: {result.output}{result.exception!r}")
    return step


def timed_steps(history: History, now: datetime) -> dict[str, float]:
    """Seconds per step on ``history``'s DB (see the module docstring)."""
    db, config, path = history.db, history.config, history.config.source
    day = (now - timedelta(days=1)).date().isoformat()
    newest = db.execute("SELECT max(id) FROM hits").scalar()
    last_run = db.execute("SELECT max(id) FROM patrol_runs").scalar()
    out = {}
    for name, args in (
        ("hits", ("hits",)), ("hits --since yesterday", ("hits", "--since", day)),
        ("hits --target", ("hits", "--target", "t001")), ("hits --json --limit 20", ("hits", "--json", "--limit", "20")),
        ("search", ("search", "保本保息")), ("show", ("show", str(newest))),
        ("changes --since yesterday", ("changes", "--since", day, "--json")),
        ("changes --run", ("changes", "--run", str(last_run), "--json")),
        ("dossier --format json", ("dossier", "t001", "--format", "json")),
        ("report (30 days, md)", ("report", "--format", "md")), ("coverage", ("coverage", "--json")),
        ("runs", ("runs",)), ("alerts list", ("alerts", "list")), ("alerts list --waiting", ("alerts", "list", "--waiting")),
        ("candidates list", ("candidates", "list")),
    ):
        out[name] = best_of(run_cli(path, *args))
    out["prune (daily housekeeping)"] = best_of(lambda: prune(config, db, now, dry_run=True))
    ids = history.ids
    out["patrol open: known_pages etc."] = best_of(lambda: (
        known_pages(db, ids), revalidations(db, {t: STAMP for t in ids}), open_hit_urls(db, ids),
        stale_verdicts(db, {t: STAMP for t in ids})))
    probe = {s.id: history.site_items(s, now, revisit=False, **PROBE) for s in history.sites.values()}
    began = time.perf_counter()
    run_id = start_run(db, "site_patrol", now, targets=ids)
    saved = [s for items in probe.values() for s in history.store(items, run_id)]
    mark_gone(db, run_id, {}, now)
    finish_run(db, run_id, "finished", {}, {t: {"pages": len(i), "failed": 0, "hits": 0, "new_hits": 0, "errors": {}}
                                            for t, i in probe.items()})
    out[f"patrol store ({sum(PROBE.values())} pages a target)"] = time.perf_counter() - began
    out["es sync: queue reads"] = timed_sync(db, saved)
    began = time.perf_counter()
    deliver(config, db, now=now + timedelta(minutes=5))
    out["alert pass after the patrol"] = time.perf_counter() - began
    out["alert pass, idle"] = best_of(lambda: deliver(config, db, now=now + timedelta(minutes=10)))
    return out


def timed_sync(db: StateDB, saved: list) -> float:
    """What ``es sync`` reads of the state DB for a patrol's new documents (no cluster: acknowledged here)."""
    queue.enqueue(db, [("page", s.page_id) for s in saved] + [("hit", s.hit_id) for s in saved if s.hit_id])
    began = time.perf_counter()
    while batch := queue.take(db, 500):
        build(db, "bench", batch)
        queue.mark_indexed(db, [(p, f"finpatrol-{p.kind}s-000001") for p in batch])
    return time.perf_counter() - began


def counts(db: StateDB) -> str:
    tables = ("pages", "page_versions", "page_changes", "hits", "patrol_runs", "run_targets", "alerts", "outbox",
              "es_docs")
    return ", ".join(f"{t} {db.execute(f'SELECT count(*) FROM {t}').scalar()}" for t in tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="1.0: 150 institutions (default 0.1: 15)")
    parser.add_argument("--small-days", type=int, default=30)
    parser.add_argument("--big-days", type=int, default=730)
    parser.add_argument("--keep", type=Path, help="Build the DBs in this folder instead of a temporary one, and keep them.")
    parser.add_argument("--reuse", action="store_true", help="Time the DBs --keep holds from an earlier run, as built"
                        " (e.g. another version of finpatrol on the same history).")
    args = parser.parse_args()
    if args.reuse and not args.keep:
        parser.error("--reuse times the DBs of --keep FOLDER")
    logging.basicConfig(level=logging.ERROR)
    targets = max(3, round(150 * args.scale))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        results = {}
        for label, days in (("small", args.small_days), ("big", args.big_days)):
            began = time.perf_counter()
            if args.reuse:
                history = reused(root / label)
            else:
                history = build_history(root / label, targets, days, now)
            print(f"{label}: {days} days of {len(history.ids)} targets {'reused' if args.reuse else 'built'} in"
                  f" {time.perf_counter() - began:.0f} s: {counts(history.db)}", flush=True)
            results[label] = timed_steps(history, history.end)
            history.db.close()
    print(f"\n{'step':40} {'small s':>9} {'big s':>9} {'big/small':>9}")
    for step, small in results["small"].items():
        big = results["big"][step]
        print(f"{step:40} {small:9.4f} {big:9.4f} {big / small:9.2f}")


if __name__ == "__main__":
    main()
