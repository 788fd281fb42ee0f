"""Result types of :func:`classifiers.classify`: frozen, picklable, JSON-ready.

Offsets (``start``/``end``) always index the ORIGINAL string of ``field`` (``"title"`` or
``"text"``) as the caller passed it, so evidence views can highlight the exact characters
even though matching ran on a normalised copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

logger = logging.getLogger(__name__)

RISK_LEVELS = ("none", "low", "medium", "high")


@dataclass(frozen=True)
class Finding:
    """One rule hit.

    category: category id; rule_id: id of the rule in its file; text: the matched
    characters as in the original; start/end: offsets into the original ``field``;
    field: ``"title" | "text"``; snippet: up to ~30 characters either side; weight: the
    rule weight (0-1); negated: True when a cue or the document context cancelled it;
    negated_by: the cue (e.g. ``"不承诺"``) or the context (``"reporting"``, ``"question"``).
    """

    category: str
    rule_id: str
    text: str
    start: int
    end: int
    field: str
    snippet: str
    weight: float
    negated: bool = False
    negated_by: str | None = None


@dataclass(frozen=True)
class YieldClaim:
    """An advertised return.

    text: the raw words; start/end: offsets into the original ``field``;
    low_annual_pct/high_annual_pct: the figure(s) as a simple annual percentage
    (月息2分 -> 24.0; 日息0.5% -> 182.5); period: the unit the claim was stated in
    (``"year" | "month" | "day" | "seven_day" | "term"``); promised: the wording presents
    it as fixed or guaranteed (固定, 保底, 稳赚, 承诺 …) rather than expected.
    """

    text: str
    start: int
    end: int
    field: str
    low_annual_pct: float
    high_annual_pct: float
    period: str
    promised: bool


@dataclass(frozen=True)
class Verdict:
    """The classifier's answer for one text.

    labels: sorted category ids that fired; score: 0-1 confidence of the strongest label;
    risk: ``"none" | "low" | "medium" | "high"``; findings: every hit including the
    cancelled ones (negated=True) so an investigator sees why nothing fired; yields:
    extracted return claims; context: ``"promotional" | "reporting" | "regulator" |
    "neutral"``, explaining why promotional labels may have been withheld.
    """

    labels: tuple[str, ...]
    score: float
    risk: str
    findings: tuple[Finding, ...]
    yields: tuple[YieldClaim, ...]
    context: str

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Rule ids of the findings that were not cancelled, in text order."""
        return tuple(f.rule_id for f in self.findings if not f.negated)

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, not tuples)."""
        return {
            "labels": list(self.labels),
            "score": self.score,
            "risk": self.risk,
            "context": self.context,
            "findings": [_as_dict(f, _FINDING_FIELDS) for f in self.findings],
            "yields": [_as_dict(y, _YIELD_FIELDS) for y in self.yields],
        }


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))
_YIELD_FIELDS = tuple(f.name for f in fields(YieldClaim))


def _as_dict(obj, names: tuple[str, ...]) -> dict:
    """``dataclasses.asdict`` for flat records of scalars, without its deep copy."""
    return {n: getattr(obj, n) for n in names}
