"""The finpatrol risk taxonomy: twelve stable category ids (see DOMAIN.md).

The ids are a public API shared by the search index, alert routing, reports and tests,
so they live in code rather than in an operator-editable rule file: an operator may add
phrases to a category but cannot invent or rename one. Each category carries the seed
section it enforces (江津府办发〔2016〕52号, the legal basis an investigator cites), a
default severity and the lead unit of the "1+6" system the alert is routed to (四(一)3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

logger = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Category:
    """One risk category.

    id: stable ascii id (``guaranteed_return`` …); name_zh: Chinese name as in DOMAIN.md;
    seed_section: section(s) of the seed document it enforces, e.g. ``"二(一)1"``;
    severity: ``"low" | "medium" | "high"``; lead_unit: default recipient of alerts;
    promotional: True when the category describes what an advertiser *says* (withheld
    when a news item or regulator notice merely quotes the wording).
    """

    id: str
    name_zh: str
    seed_section: str
    severity: str
    lead_unit: str
    promotional: bool


_P2P = "江津银监分局"
_FIN_OFFICE = "区金融办"
_PBOC = "人行江津中心支行"
_SAIC = "江津工商分局"
_POLICE = "区公安局"
_OPINION = "区委宣传部/区网信办"
_HOUSING = "区城乡建委/区国土房管局"

_ROWS = (
    ("guaranteed_return", "承诺保本保息/刚性兑付", "二(一)1, 二(二)2", "high", _P2P, True),
    ("high_yield", "显失合理的超高回报", "三(四)", "medium", _SAIC, True),
    ("false_advertising", "虚假宣传/误导性宣传", "二(一)1-2, 二(四)", "medium", _SAIC, True),
    ("fund_pool", "资金池/期限错配/期限拆分", "二(一)1", "high", _P2P, True),
    ("self_financing", "自融自保", "二(一)1", "high", _P2P, True),
    ("illegal_fundraising", "非法集资", "二(一)1, 二(一)2", "high", _POLICE, True),
    ("unlicensed_business", "无资质开展金融业务", "二(一)3, 二(二)1-2, 二(三)3", "medium", _PBOC, True),
    ("real_estate_finance", "违规房地产金融", "二(一)4", "medium", _HOUSING, True),
    ("equity_crowdfunding", "股权众筹违规", "二(一)2", "medium", _FIN_OFFICE, True),
    ("payment_violation", "支付业务违规", "二(三)", "medium", _PBOC, True),
    ("collapse_signal", "平台风险事件", "三(六)", "high", _OPINION, False),
    ("mass_incident", "群体性事件苗头", "三(六), 五(三)", "high", _OPINION, False),
)

CATEGORIES: Mapping[str, Category] = MappingProxyType(
    {row[0]: Category(*row) for row in _ROWS}
)
"""All categories in taxonomy order (read-only mapping id -> Category)."""

PROMOTIONAL = frozenset(c.id for c in CATEGORIES.values() if c.promotional)
