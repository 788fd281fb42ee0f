"""Build alert and digest e-mails with the standard ``email`` package.

Multipart text + HTML; the HTML comes from jinja2 templates with autoescaping,
so everything taken from crawled pages (titles, snippets, URLs) is escaped, and
only http(s) URLs become links. Matched words are highlighted (``<mark>`` in
HTML, 【】 in text). A screenshot named by the hit's evidence is attached inline.
Settings: ``smtp.sender``, ``smtp.sender_name``, ``routing.units``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from email.headerregistry import Address, Group
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from markupsafe import Markup, escape

from crawler.alerts.routing import addresses
from crawler.config import PatrolConfig
from crawler.wording import local_time, published_time, zh

logger = logging.getLogger(__name__)
RISK_COLOR = {"high": "#b00", "medium": "#d80", "low": "#888", "none": "#888"}
MAX_SCREENSHOT = 5 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _pieces(finding: dict):
    """(text, matched?) pieces of a finding's snippet, the matched word marked."""
    snippet = finding.get("snippet") or finding.get("text") or ""
    word = finding.get("text") or ""
    if not word or word not in snippet:
        return [(snippet, False)] if snippet != word else [(word, True)]
    out, parts = [], snippet.split(word)
    for i, part in enumerate(parts):
        if part:
            out.append((part, False))
        if i < len(parts) - 1:
            out.append((word, True))
    return out


def highlight(finding: dict) -> Markup:
    return Markup("").join(
        Markup('<mark style="background:#ffe08a">%s</mark>') % text if hit else escape(text)
        for text, hit in _pieces(finding)
    )


def highlight_text(finding: dict) -> str:
    return "".join(f"【{text}】" if hit else text for text, hit in _pieces(finding)).replace("\n", " ")


@pass_context
def shown_time(context, value) -> str:
    """ISO 8601 (UTC) → ``2026-11-27 18:00`` in the alerts time zone (``tz`` of the context)."""
    return local_time(value, context.get("tz") or "Asia/Shanghai") or "—"


@pass_context
def published(context, value) -> str:
    """A post's publish date as its listing or page gives it (``wording.published_time``)."""
    return published_time(value, context.get("tz") or "Asia/Shanghai")


def safe_href(url) -> str:
    url = str(url or "")
    return url if urlsplit(url).scheme in ("http", "https") else "#"


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=False,
)
_env.filters.update(
    highlight=highlight, highlight_text=highlight_text, safe_href=safe_href,
    local_time=shown_time, published=published,
    zh=zh, risk_zh=lambda r: zh(r, "risk"), risk_color=lambda r: RISK_COLOR.get(r, "#888"),
)


def clean_header(value: str, limit: int = 200) -> str:
    value = _CONTROL.sub(" ", value).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def build(
    config: PatrolConfig,
    unit_id: str,
    *,
    subject: str,
    message_id: str,
    groups: list[dict],
    now: datetime,
    digest: bool = False,
    intro: str = "",
) -> EmailMessage:
    """One message to one unit; ``groups`` = [{"title": str, "alerts": [payload + kind]}]."""
    smtp, unit = config.smtp, config.routing.units[unit_id]
    msg = EmailMessage()
    msg["Subject"] = clean_header(subject)
    user, _, domain = smtp.sender.rpartition("@")
    msg["From"] = Address(smtp.sender_name, user, domain)
    to = addresses(config.routing, unit_id)
    msg["To"] = to if to else Group(f"{unit.name}（未配置邮箱）")
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["X-Finpatrol-Unit"] = unit_id
    groups = [{**group, "alerts": by_hit(group["alerts"])} for group in groups]
    images = _screenshots(groups)
    context = {"tz": config.alerts.timezone, "unit": unit_id, "unit_name": unit.name, "groups": groups,
               "digest": digest, "intro": intro, "subject": subject}
    msg.set_content(_env.get_template("message.txt.j2").render(context))
    msg.add_alternative(_env.get_template("message.html.j2").render(context), subtype="html")
    if images:
        html_part = msg.get_payload()[1]
        for cid, data in images:
            html_part.add_related(data, "image", "png", cid=f"<{cid}>", filename=f"{cid.split('@')[0]}.png")
    return msg


def by_hit(alerts: list[dict]) -> list[dict]:
    """The hit alerts of one page as one entry with every category (``categories``).

    A page that breaks four rules is four alerts; the message shows its findings,
    yields and evidence once, under the four category names, each with its legal basis.
    """
    out: list[dict] = []
    merged: dict[int, dict] = {}
    for alert in alerts:
        if alert.get("kind") != "hit":
            out.append(alert)
            continue
        category = {key: alert.get(key) for key in ("category", "category_zh", "seed_section")}
        entry = merged.get(alert["hit"]["id"])
        if entry is None:
            entry = merged[alert["hit"]["id"]] = {**alert, "categories": [], "reworded_from": None}
            out.append(entry)
        entry["categories"].append(category)
        _merge_rewording(entry, alert.get("reworded_from"))
        for key in ("withdrawn_before", "reopened_at"):  # said of the page: once, whichever category says it
            entry[key] = entry.get(key) or alert.get(key)
    return out


def _merge_rewording(entry: dict, earlier: dict | None) -> None:
    """One ``reworded_from`` per entry: the earlier hit, with the old words of every reworded category."""
    if not earlier:
        return
    if entry["reworded_from"] is None:
        entry["reworded_from"] = {**earlier, "words": []}
    words = entry["reworded_from"]["words"]
    words += [word for word in earlier.get("words", []) if word not in words]


def _screenshots(groups: list[dict]) -> list[tuple[str, bytes]]:
    """Inline PNG screenshots read from the evidence; sets ``cid`` on the alert payloads."""
    out = []
    for group in groups:
        for alert in group["alerts"]:
            alert.setdefault("cid", None)
            data = alert.pop("screenshot_png", None)
            if data and len(data) <= MAX_SCREENSHOT:
                cid = f"shot{alert['hit']['id']}@finpatrol"
                out.append((cid, data))
                alert["cid"] = cid
    return out
