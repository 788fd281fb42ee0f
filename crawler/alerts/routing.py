"""Which lead units get an alert (四(一)3, the 1+6 system).

Driven by ``routing:``: a hit goes to the units of its institution's business
type plus the units of each alerting category (a category route may require a
minimum risk, as the police route for illegal fundraising does). Its institution is
the one it concerns (``evaluate.concerns``): a post on a forum registered as a target,
an ad of a channel or a post of an opinion source attributed to 鑫盈宝 goes to the
units of 鑫盈宝's business, not to those of the forum's or the channel's, which is no
institution the claim is about (their ``other`` would add the leading-group office
to every such post; the categories that concern it route there anyway). Opinion alerts
go to ``opinion_units`` plus the business units; operator notices to
``operator_unit``. Nothing is ever routed nowhere: ``fallback_unit`` catches it.
"""

from __future__ import annotations

import logging
from email.headerregistry import Address

from crawler.alerts.config import RoutingConfig, risk_rank

logger = logging.getLogger(__name__)


def units_for_hit(routing: RoutingConfig, business: str | None, category: str, risk: str) -> list[str]:
    units: list[str] = list(routing.business.get(business or "other", ()))
    route = routing.categories.get(category)
    if route and risk_rank(risk) >= risk_rank(route.min_risk):
        units += route.units
    return _unique(units) or [routing.fallback_unit]


def units_for_opinion(routing: RoutingConfig, business: str | None) -> list[str]:
    return _unique([*routing.opinion_units, *routing.business.get(business or "other", ())]) or [
        routing.fallback_unit
    ]


def units_for_operator(routing: RoutingConfig) -> list[str]:
    return [routing.operator_unit]


def addresses(routing: RoutingConfig, unit_id: str) -> list[Address]:
    """The unit's mailboxes with its name as display name; empty when none are configured."""
    unit = routing.units[unit_id]
    out = []
    for email in unit.emails:
        user, _, domain = email.rpartition("@")
        out.append(Address(display_name=unit.name, username=user, domain=domain))
    return out


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
