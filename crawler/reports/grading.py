"""Risk grading of one institution (甄别分类, 五 2): the ``grading:`` config block and the
pure evaluation of its rules over an institution's hits.

Grades, most severe first: 高风险, 重点关注, 一般关注, and 正常 when no rule matches.
Each rule names a grade and conditions over the institution's hits in the last
``window_days`` (its own hits and the channel/opinion hits attributed to it): any
of ``categories``, at least ``min_risk``, at least ``min_hits`` such hits, a claimed
yield of at least ``min_yield_pct``, at least ``min_opinion`` posts with an opinion
signal (a collapse_signal / mass_incident hit). Hits count by page: the hits of one post
(its page on a target's site, on an opinion source, its listed snippet) count
once. Removed (rectified) hits count only with ``include_removed``, but for their
opinion signals: a collapse or 维权 notice taken down was seen, and taking it down is
no rectification (if anything it is one more sign), so a removed hit still counts by its
collapse_signal / mass_incident labels, and by them only. The grade is
the most severe matching rule; every matching rule is listed as a reason, so an
investigator sees why.

Two labels are no grade: 未巡查 (no patrol of the institution's site fetched pages in
the period: no data, not 正常; a grade from earlier hits is kept, saying so) and 不分级
(a forum, complaint board or news site registered as a target: its posts are about
others and count for the institutions they name, as an opinion source's do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crawler.alerts.config import check_categories

logger = logging.getLogger(__name__)

GRADES = ("高风险", "重点关注", "一般关注", "正常")
UNPATROLLED = "未巡查"
NOT_GRADED = "不分级"
RISK_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
OPINION_CATEGORIES = frozenset({"collapse_signal", "mass_incident"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class When(_Frozen):
    categories: tuple[str, ...] = ()
    """Any of these category ids (empty: any category)."""
    min_risk: Literal["low", "medium", "high"] | None = None
    min_hits: int = Field(1, ge=1)
    min_yield_pct: float | None = Field(None, gt=0)
    min_opinion: int | None = Field(None, ge=1)
    include_removed: bool = False

    @field_validator("categories")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_categories(value)


class GradeRule(_Frozen):
    grade: Literal["高风险", "重点关注", "一般关注"]
    when: When
    reason: str = ""
    """Shown in dossiers; generated from the conditions when empty."""


DEFAULT_RULES = (
    GradeRule(grade="高风险", when=When(categories=("illegal_fundraising", "collapse_signal", "mass_incident")),
              reason="非法集资或平台风险事件/群体性事件信号"),
    GradeRule(grade="高风险", when=When(min_risk="high", min_hits=3), reason="三条以上高风险命中"),
    GradeRule(grade="重点关注", when=When(min_risk="high"), reason="存在高风险命中"),
    GradeRule(grade="重点关注", when=When(min_yield_pct=15), reason="宣传年化收益达15%以上"),
    GradeRule(grade="一般关注", when=When(), reason="存在违规宣传命中"),
)


class GradingConfig(_Frozen):
    window_days: int = Field(365, ge=1, le=3650)
    rules: tuple[GradeRule, ...] = DEFAULT_RULES


@dataclass(frozen=True)
class HitFacts:
    """What grading needs of one hit."""

    post: str
    """What the hit counts as: its post (``crawler.items.post_url``), or its content when other
    URLs of its target show it too (``crawler.reports.data``); hits with the same count once."""
    labels: tuple[str, ...]
    risk: str
    removed: bool
    max_yield: float | None = None


@dataclass
class Grade:
    grade: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"grade": self.grade, "reasons": list(self.reasons)}


def describe(when: When) -> str:
    parts = []
    if when.categories:
        parts.append("类别 " + "/".join(when.categories))
    if when.min_risk:
        parts.append(f"风险≥{when.min_risk}")
    if when.min_yield_pct:
        parts.append(f"宣传收益≥{when.min_yield_pct:g}%")
    if when.min_opinion:
        parts.append(f"舆情信号≥{when.min_opinion}")
    parts.append(f"命中≥{when.min_hits}")
    return "，".join(parts)


def _matches(when: When, hit: HitFacts) -> bool:
    labels = set(hit.labels)
    if hit.removed and not when.include_removed:
        labels &= OPINION_CATEGORIES  # a signal seen stays seen; a violation removed is rectified
        if not labels:
            return False
    if when.categories and not set(when.categories) & labels:
        return False
    if when.min_risk and RISK_RANK.get(hit.risk, 0) < RISK_RANK[when.min_risk]:
        return False
    if when.min_yield_pct and not (hit.max_yield is not None and hit.max_yield >= when.min_yield_pct):
        return False
    return True


def grade(config: GradingConfig, hits: list[HitFacts]) -> Grade:
    """The most severe grade whose rule matches, with every matching rule as a reason."""
    matched: list[tuple[int, str]] = []
    for rule in config.rules:
        matching = [h for h in hits if _matches(rule.when, h)]
        chosen = {h.post for h in matching}
        if len(chosen) < rule.when.min_hits:
            continue
        if rule.when.min_opinion:
            opinion = {h.post for h in matching if OPINION_CATEGORIES & set(h.labels)}
            if len(opinion) < rule.when.min_opinion:
                continue
        text = f"{rule.grade}：{rule.reason or describe(rule.when)}（{len(chosen)} 个网页命中）"
        matched.append((GRADES.index(rule.grade), text))
    if not matched:
        return Grade("正常", ["无符合分级规则的命中"])
    best = min(rank for rank, _ in matched)
    return Grade(GRADES[best], [text for _, text in sorted(matched, key=lambda m: m[0])])


def unpatrolled(found: Grade) -> Grade:
    """``found`` of an institution whose site no patrol fetched in the period: 未巡查 rather than 正常."""
    if found.grade == "正常":
        return Grade(UNPATROLLED, ["本期未巡查，无巡查数据"])
    return Grade(found.grade, [*found.reasons, "本期未巡查：分级依据此前巡查所见命中"])


def not_graded() -> Grade:
    """The grade of a target whose pages are posts about others (``kind`` other than platform_page)."""
    return Grade(NOT_GRADED, ["论坛、投诉或新闻站点：其帖文计入所提及的机构，站点本身不分级"])
