"""Charts for reports and dossiers: matplotlib with the Agg backend, CJK labels.

The font is WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``, installed by
``scripts/setup.sh``); matplotlib falls back to its default font when it is missing.
Every chart is a PNG as bytes; the caller writes it next to the report or embeds it.
"""

from __future__ import annotations

import io
import logging

logger = logging.getLogger(__name__)

CJK_FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans"]
COLORS = {"collapse_signal": "#d62728", "mass_incident": "#9467bd"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = CJK_FONTS
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return plt


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def trend_chart(trend: list[dict], names: dict[str, str], title: str = "舆情信号趋势") -> bytes:
    """Opinion signals per day, one line per category."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    days = [row["day"] for row in trend]
    for category in ("collapse_signal", "mass_incident"):
        counts = [row["counts"].get(category, 0) for row in trend]
        ax.plot(days, counts, marker="o", color=COLORS[category], label=names.get(category, category))
    ax.set_title(title)
    ax.set_ylabel("条数")
    ax.legend(loc="upper left")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    if not days:
        ax.text(0.5, 0.5, "本期无舆情信号", ha="center", va="center", transform=ax.transAxes)
    return _png(fig, plt)


def bar_chart(labels: list[str], values: list[int], title: str) -> bytes:
    """Horizontal bars, largest on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(labels), 2) + 1.2))
    ax.barh(labels[::-1], values[::-1], color="#1f77b4")
    ax.set_title(title)
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    if not labels:
        ax.text(0.5, 0.5, "无", ha="center", va="center", transform=ax.transAxes)
    return _png(fig, plt)
