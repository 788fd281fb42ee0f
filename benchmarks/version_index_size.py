"""What indexing earlier page versions for search costs in state DB size.

Run by hand:  .venv/bin/python benchmarks/version_index_size.py [--pages 500] [--versions 6]

Stores ``--pages`` pages of about 2,000 characters through the real store path, then
changes a sentence and a visit counter on each of them ``--versions - 1`` times (the
worst case: every patrol a new version of every page), and prints the state DB's size
with the earlier versions indexed (``version_fts``) beside the same DB without them,
and what ``page_versions`` itself holds, so the ratio reads as "the index of earlier
versions is N× the text they already keep".
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.config import Target  # noqa: E402
from crawler.items import PageItem  # noqa: E402
from crawler.store.db import StateDB  # noqa: E402
from crawler.store.pages import save_pages  # noqa: E402
from crawler.store.runs import sync_targets  # noqa: E402

SENTENCES = (
    "本平台承诺保本保息，年化收益率高达18%，稳赚不赔。", "近期部分出借人反映提现困难，平台正在处理逾期项目。",
    "我们是一家信息中介平台，理财非存款，产品有风险，投资须谨慎。", "地址：重庆市江津区几江街道滨江新城。",
    "新手专享标，注册即送888元红包，邀请好友再得现金奖励。", "资金由第三方银行存管，借款项目均经过严格风控审核。",
    "平台累计成交金额突破十亿元，累计为用户赚取收益数千万元。", "客服热线工作时间为每日九点至二十一点，节假日照常。",
    "小微企业主凭营业执照即可申请最高五十万元信用贷款。", "本金保障计划覆盖全部出借人，逾期由风险准备金先行垫付。",
)


def text_of(rng: random.Random, page: int, version: int) -> str:
    body = "".join(rng.choice(SENTENCES) for _ in range(80))
    return f"产品{page}说明，第{version}版，本页访问量{rng.randrange(10**6)}次。{body}"


def item(page: int, text: str, when: str) -> PageItem:
    url = f"http://alpha.example/p{page}"
    body = f"<html><body>{text}</body></html>".encode()
    return PageItem(target_id="alpha", url=url, final_url=url, status=200, headers={}, body=body, encoding="utf-8",
                    fetched_at=when, title=f"产品{page}", text=text, sha256=hashlib.sha256(body).hexdigest(),
                    text_fingerprint=hashlib.sha256(text.encode()).hexdigest(),
                    verdict={"labels": [], "risk": "none", "score": 0.0, "context": "", "findings": [], "yields": []})


def size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--versions", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        db = StateDB(f"sqlite:///{path}")
        sync_targets(db, [Target(id="alpha", name="阿尔法", business="p2p", urls=["http://alpha.example/"])])
        for version in range(args.versions):
            when = f"2026-11-{version + 1:02d}T02:00:00+00:00"
            for start in range(0, args.pages, 100):
                save_pages(db, [item(p, text_of(rng, p, version), when) for p in range(start, min(start + 100, args.pages))],
                           None)
        earlier = db.execute("SELECT count(*) FROM version_fts").scalar()
        db.close()
        with_versions = size(path)
        conn = sqlite3.connect(path)
        texts = conn.execute("SELECT sum(length(CAST(text AS BLOB))) FROM page_versions").fetchone()[0]
        conn.execute("DELETE FROM version_fts")
        conn.commit()
        conn.close()
        without = size(path)
    mb = 1 / 2**20
    print(f"{args.pages} pages × {args.versions} versions: {earlier} earlier versions indexed")
    print(f"state DB without them {without * mb:.1f} MB, with them {with_versions * mb:.1f} MB"
          f" (×{with_versions / without:.2f}); page_versions' text {texts * mb:.1f} MB;"
          f" the index of earlier versions is {(with_versions - without) / texts:.2f}× the text they keep")


if __name__ == "__main__":
    main()
