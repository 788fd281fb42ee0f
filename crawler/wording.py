"""Chinese names of finpatrol's codes, and times in the office's zone, for what people read.

Codes (``high``, ``p2p``, ``partial``, ``own_site``…) stay as they are in the state DB,
in ``--json`` output and in Elasticsearch, which programs read. Dossiers, reports and
alert mails are read by investigators and handed to other units: they name each code
through these tables, so one code has one Chinese name everywhere. A code without a
name here is shown as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

RISK = {"high": "高风险", "medium": "中风险", "low": "低风险", "none": "无"}
BUSINESS = {  # also the business types a target may have (crawler.config.BUSINESS_TYPES)
    "p2p": "P2P网络借贷", "crowdfunding": "股权众筹", "insurance": "互联网保险", "payment": "第三方支付",
    "asset_management": "互联网资产管理", "other": "其他",
}
COVERAGE = {
    "ok": "正常", "partial": "部分请求失败", "blocked": "被拒绝访问", "offline": "无法访问",
    "domain_gone": "域名无法解析", "not_found": "页面不存在", "other": "其他错误", "failed": "失败",
    "never": "从未巡查",
}
"""Coverage statuses and failure classes (``crawler.reports.coverage``)."""
RUN = {"ok": "完成", "partial": "部分完成", "failed": "失败", "running": "进行中"}
CHANGE = {"added": "新增", "changed": "变化", "gone": "下线"}
ATTRIBUTION = {"own_site": "本机构网站", "domain": "域名", "advertiser": "广告主", "name": "名称提及"}

CRAWL_END = {"finished": "进程正常结束", "timeout": "超时被停止", "killed": "超时且被强制终止", "stopped": "服务停止",
             "no_run": "未留下巡查记录", "not_started": "未能启动"}
"""How a scheduled crawl process ended (``crawler.schedule.runner.CrawlOutcome.reason``);
``exit_<code>`` is named by :func:`crawl_end`."""

TABLES = {"risk": RISK, "business": BUSINESS, "coverage": COVERAGE, "run": RUN, "change": CHANGE,
          "attribution": ATTRIBUTION, "crawl_end": CRAWL_END}


def crawl_end(reason: str) -> str:
    """``timeout`` → 超时被停止, ``exit_2`` → 异常退出（代码 2）."""
    if reason.startswith("exit_"):
        return f"异常退出（代码 {reason[5:]}）"
    return zh(reason, "crawl_end")


def zh(code: str | None, table: str) -> str:
    """The Chinese name of ``code`` in the named table, or the code itself."""
    if code is None:
        return ""
    return TABLES[table].get(code, code)


def local_time(value, zone: str) -> str:
    """An ISO time as the office reads it, ``2026-11-29 17:01`` in ``zone`` (a time without
    offset is UTC, as the state DB keeps it); a date alone, or anything else, as it is.

    The state DB, ``--json`` and Elasticsearch keep UTC ISO times for programs; tables,
    dossiers, reports and mails show them this way.
    """
    if not value or len(str(value)) <= 10:
        return str(value or "")
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def published_time(value, zone: str) -> str:
    """A publish time as a site gives it (a listing's ``posted_at``, a page's date): a date as
    it is, a time with an offset in ``zone``, a time without one as written (the site's own
    clock, which this cannot know)."""
    value = str(value or "").strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if len(value) <= 10:
        return f"{parsed:%Y-%m-%d}"
    return local_time(value, zone) if parsed.tzinfo else f"{parsed:%Y-%m-%d %H:%M}"
