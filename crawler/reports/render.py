"""Render dossiers and period reports as HTML or Markdown from jinja2 templates.

HTML templates are autoescaped, so crawled titles, snippets and URLs are text, never
markup. Markdown output escapes every value too (``<``, ``>``, ``&``, ``|``, ``[``,
``]``, ``*``, ``_``, backticks), since Markdown viewers render raw HTML and tables
break on ``|``. Charts are PNG files next to the output file (``<stem>-charts/``),
or data URIs when the output goes to stdout. A dossier lists the hits of one content on
several URLs as one row (``crawler.reports.contents``).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from crawler.reports import charts
from crawler.reports.contents import fold_contents
from crawler.wording import local_time, published_time, zh

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|<>#"} | {"\n": " ", "\r": " ", "&": "&amp;"})


def md_escape(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Markup):
        return str(value)
    return str(value).translate(_MD_SPECIAL)


def _environment(fmt: str, zone: str) -> Environment:
    if fmt == "html":
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    else:
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False, finalize=md_escape,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "" if v is None else f"{v:g}%"
    env.filters["zh"] = zh
    env.filters["local"] = lambda value: local_time(value, zone)
    env.filters["published"] = lambda value: published_time(value, zone)
    return env


@dataclass
class Rendered:
    text: str
    charts: dict[str, bytes] = field(default_factory=dict)

    def write(self, out: Path) -> list[Path]:
        """Write the document and its charts; returns every file written."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.text, encoding="utf-8")
        written = [out]
        if self.charts:
            folder = out.with_name(out.stem + "-charts")
            folder.mkdir(exist_ok=True)
            for name, data in self.charts.items():
                (folder / name).write_bytes(data)
                written.append(folder / name)
        return written


def _chart_sources(images: dict[str, bytes], out: Path | None, fmt: str) -> dict[str, str]:
    if out is not None:
        wrap = Markup if fmt == "md" else str  # a path we made is not crawled text
        return {name: wrap(f"{out.stem}-charts/{name}".replace(" ", "%20")) for name in images}
    if fmt == "html":
        return {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in images.items()}
    return {}


def render_dossier(data: dict, fmt: str, out: Path | None = None) -> Rendered:
    names = {k: v["name_zh"] for k, v in data["categories"].items()}
    counts: dict[str, int] = {}
    for row in data["by_month"]:
        for cat, n in row["counts"].items():
            counts[cat] = counts.get(cat, 0) + n
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    images = {"categories.png": charts.bar_chart([names.get(c, c) for c, _ in ranked], [n for _, n in ranked],
                                                  f"{data['identity']['name']}：命中类别")}
    template = _environment(fmt, data["timezone"]).get_template(f"dossier.{fmt}.j2")
    text = template.render(d=data, rows=fold_contents(data["hits"]), names=names,
                           charts=_chart_sources(images, out, fmt))
    return Rendered(text, images if out is not None else {})


def render_report(data: dict, fmt: str, out: Path | None = None) -> Rendered:
    from crawler.reports.data import category_info

    names = {k: v["name_zh"] for k, v in category_info().items()}
    images = {
        "trend.png": charts.trend_chart(data["opinion_trend"], names),
        "categories.png": charts.bar_chart([f"{c['name_zh']}" for c in data["by_category"]],
                                           [c["count"] for c in data["by_category"]], "命中类别分布"),
    }
    template = _environment(fmt, data["timezone"]).get_template(f"report.{fmt}.j2")
    text = template.render(r=data, names=names, charts=_chart_sources(images, out, fmt))
    return Rendered(text, images if out is not None else {})
