"""The ``alerts:``, ``routing:`` and ``smtp:`` blocks of ``patrol.yaml``.

Frozen pydantic models (unknown keys are errors) that ``crawler.config.PatrolConfig``
embeds. Defaults give a working setup with no configuration at all: serious hits
and collapse / 维权 signals alert at once, the rest goes into a daily digest at
08:30 Asia/Shanghai, routing follows the 1+6 mapping of DOMAIN.md, and with no
``smtp.host`` every message is written as an ``.eml`` file under
``state_dir/outbox/``. See docs/alerts.md for the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from classifiers.taxonomy import CATEGORIES
from crawler.config_yaml import as_written, field_errors, unknown_id

RISKS = ("none", "low", "medium", "high")
Risk = Literal["none", "low", "medium", "high"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def risk_rank(risk: str) -> int:
    return RISKS.index(risk) if risk in RISKS else 0


def _duration(value) -> float:
    """``90`` (seconds), ``"15m"``, ``"12h"``, ``"7d"`` → seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 90, '15m', '12h' or '7d', got {as_written(value)}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _clock(value) -> time:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 08:30 as 510 (sexagesimal)
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"expected a time of day like '08:30', got {as_written(value)}")
    return time(int(match.group(1)), int(match.group(2)))


def check_categories(value: tuple[str, ...], any_allowed: bool = False) -> tuple[str, ...]:
    """Every id must be one of the taxonomy's (``*`` too with ``any_allowed``): a typo would
    silently match nothing. Shared by ``alerts`` and ``grading``."""
    known = [*CATEGORIES, "*"] if any_allowed else list(CATEGORIES)
    unknown = [c for c in value if c not in known]
    if unknown:
        raise ValueError("; ".join(unknown_id("category id", c, known) for c in unknown))
    return value


Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
Clock = Annotated[time, BeforeValidator(_clock)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (expected e.g. 'Asia/Shanghai')") from None
    return value


class Rule(_Frozen):
    """First matching rule wins: which hits alert at once, go to the digest, or are ignored."""

    categories: tuple[str, ...] = ("*",)
    """Category ids, ``*`` for any."""
    min_risk: Risk = "low"
    action: Literal["immediate", "digest", "ignore"]

    @field_validator("categories")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_categories(value, any_allowed=True)


DEFAULT_RULES = (
    Rule(categories=("mass_incident", "collapse_signal"), min_risk="low", action="immediate"),
    Rule(categories=("*",), min_risk="high", action="immediate"),
    Rule(categories=("*",), min_risk="low", action="digest"),
)


class QuietHours(_Frozen):
    """Non-urgent immediate mail found in this span waits until it ends (local time)."""

    start: Clock = time(22, 0)
    end: Clock = time(7, 0)


class OpinionConfig(_Frozen):
    """Early warning on collapse / 维权 signals about one institution (三(六))."""

    categories: tuple[str, ...] = ("collapse_signal", "mass_incident")
    window: Seconds = 24 * 3600
    """Sliding window in which posts with opinion hits are counted."""
    threshold: int = Field(5, ge=1)
    """Alert when the window holds at least this many posts (a post found several ways counts once)."""
    baseline_days: int = Field(7, ge=1, le=90)
    """Trailing days before the window that make the institution's own baseline."""
    spike_factor: float = Field(3.0, gt=1)
    """Alert when the count reaches this multiple of the baseline mean per window ..."""
    min_count: int = Field(3, ge=1)
    """... and is at least this."""
    first_mass_incident: bool = True
    """The first ``mass_incident`` hit of an institution alerts at once."""

    @field_validator("categories")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_categories(value)


class SiteDownConfig(_Frozen):
    """A registered institution's site that stops answering alerts its units (``crawler.alerts.site_down``)."""

    enabled: bool = True
    after: Seconds = 24 * 3600
    """Down: every patrol since its last successful one found no server answering (or its name
    unresolved) for at least this long ..."""
    min_patrols: int = Field(2, ge=1)
    """... and in at least this many patrols in a row."""


class AlertsConfig(_Frozen):
    enabled: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    targets: dict[str, tuple[Rule, ...]] = {}
    """Per-target rules, tried before ``rules`` (e.g. ignore a bank's own compliant pages); keyed
    by target id, or ``channel:<id>`` / ``source:<id>`` (checked by ``PatrolConfig``, which knows them)."""
    urgent_risk: Risk = "high"
    """Immediate alerts at or above this risk ignore quiet hours (opinion alerts always do)."""
    timezone: Annotated[str, BeforeValidator(check_timezone)] = "Asia/Shanghai"
    digest_time: Clock = time(8, 30)
    quiet_hours: QuietHours | None = QuietHours()
    renotify_after: Seconds = 7 * 86400
    """The same institution + category + matched text alerts again only after this long."""
    max_per_recipient_per_hour: int = Field(20, ge=1)
    """More immediate mails to one unit within an hour roll into its next digest."""
    opinion: OpinionConfig = OpinionConfig()
    site_down: SiteDownConfig = SiteDownConfig()
    operator_alerts: bool = True
    """Failed, missed or unhealthy scheduled crawls mail the operator unit."""
    operator_renotify: Seconds = 6 * 3600
    """The same job failing the same way mails the operator again only after this long."""


class Unit(_Frozen):
    name: str = ""
    """Optional for the default units, which keep their own name."""
    emails: tuple[str, ...] = ()

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", email):
                raise ValueError(f"not an e-mail address: {email!r}")
        return value


class CategoryRoute(_Frozen):
    units: tuple[str, ...]
    min_risk: Risk = "none"


DEFAULT_UNITS = {
    "cbrc": Unit(name="江津银监分局"),
    "finance_office": Unit(name="区金融办"),
    "pboc": Unit(name="人行江津中心支行"),
    "market_regulator": Unit(name="江津工商分局"),
    "police": Unit(name="区公安局"),
    "opinion": Unit(name="区委宣传部 / 区网信办"),
    "office": Unit(name="领导小组办公室"),
    "housing": Unit(name="区城乡建委 / 区国土房管局"),
    "operator": Unit(name="系统运维"),
}
DEFAULT_BUSINESS = {
    "p2p": ("cbrc",),
    "crowdfunding": ("finance_office",),
    "insurance": ("finance_office",),
    "payment": ("pboc",),
    "asset_management": ("pboc",),
    "other": ("office",),
}
DEFAULT_CATEGORIES = {
    "false_advertising": CategoryRoute(units=("market_regulator",)),
    "illegal_fundraising": CategoryRoute(units=("police",), min_risk="high"),
    "collapse_signal": CategoryRoute(units=("opinion", "office")),
    "mass_incident": CategoryRoute(units=("opinion", "office")),
    "real_estate_finance": CategoryRoute(units=("housing",)),
    "equity_crowdfunding": CategoryRoute(units=("finance_office",)),
    "payment_violation": CategoryRoute(units=("pboc",)),
}


class RoutingConfig(_Frozen):
    """Lead units (四(一)3) and which hits go to which; the defaults are DOMAIN.md's table.

    ``units`` given in the config are merged over the defaults by id, so setting only
    ``emails`` of ``cbrc`` keeps every other unit.
    """

    units: dict[str, Unit] = {}
    business: dict[str, tuple[str, ...]] = {}
    categories: dict[str, CategoryRoute] = {}
    opinion_units: tuple[str, ...] = ("opinion", "office")
    operator_unit: str = "operator"
    fallback_unit: str = "office"
    """Gets hits that no rule routes anywhere."""

    @field_validator("units")
    @classmethod
    def _named(cls, value: dict[str, Unit]) -> dict[str, Unit]:
        unnamed = [unit_id for unit_id, unit in value.items() if not unit.name and unit_id not in DEFAULT_UNITS]
        if unnamed:
            raise ValueError(f"unit {', '.join(unnamed)} needs a name: only the default units "
                             f"({', '.join(DEFAULT_UNITS)}) have one")
        return value

    @field_validator("business")
    @classmethod
    def _business(cls, value: dict[str, tuple[str, ...]], info: ValidationInfo) -> dict[str, tuple[str, ...]]:
        problems = [((key,), unknown_id("business type", key, DEFAULT_BUSINESS))
                    for key in value if key not in DEFAULT_BUSINESS]
        problems += _unit_problems(info, [((key, i), unit) for key, units in value.items()
                                          for i, unit in enumerate(units)])
        if problems:
            raise field_errors(problems)
        return value

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: dict[str, CategoryRoute], info: ValidationInfo) -> dict[str, CategoryRoute]:
        problems = [((key,), unknown_id("category id", key, CATEGORIES)) for key in value if key not in CATEGORIES]
        problems += _unit_problems(info, [((key, "units", i), unit) for key, route in value.items()
                                          for i, unit in enumerate(route.units)])
        if problems:
            raise field_errors(problems)
        return value

    @field_validator("opinion_units")
    @classmethod
    def _opinion_units(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        problems = _unit_problems(info, [((i,), unit) for i, unit in enumerate(value)])
        if problems:
            raise field_errors(problems)
        return value

    @field_validator("operator_unit", "fallback_unit")
    @classmethod
    def _unit(cls, value: str, info: ValidationInfo) -> str:
        problems = _unit_problems(info, [((), value)])
        if problems:
            raise ValueError(problems[0][1])
        return value

    @model_validator(mode="after")
    def _merge_defaults(self) -> "RoutingConfig":
        units = dict(DEFAULT_UNITS)
        for unit_id, unit in self.units.items():
            units[unit_id] = unit if unit.name else unit.model_copy(update={"name": DEFAULT_UNITS[unit_id].name})
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "business", {**DEFAULT_BUSINESS, **self.business})
        object.__setattr__(self, "categories", {**DEFAULT_CATEGORIES, **self.categories})
        return self

    def routed_units(self) -> list[str]:
        """Every unit some alert can go to, in the order the routing names them."""
        named = [*self.opinion_units, self.operator_unit, self.fallback_unit]
        named += [u for us in self.business.values() for u in us]
        named += [u for route in self.categories.values() for u in route.units]
        return list(dict.fromkeys(named))


def _unit_problems(info: ValidationInfo, named: list[tuple[tuple, str]]) -> list[tuple[tuple, str]]:
    """Each (path, unit id) naming a unit that is neither a default unit nor one of ``routing.units``."""
    if "units" not in info.data:
        return []  # routing.units is itself wrong: its own error says so
    known = [*DEFAULT_UNITS, *(u for u in info.data["units"] if u not in DEFAULT_UNITS)]
    return [(loc, unknown_id("unit id", unit, known, how="define new units under routing.units"))
            for loc, unit in named if unit not in known]


class SmtpConfig(_Frozen):
    """Outgoing mail; with no ``host`` messages are written as .eml files instead."""

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` = implicit TLS (port 465), ``none`` (port 25, local relays)."""
    username_env: str = "FINPATROL_SMTP_USER"
    password_env: str = "FINPATROL_SMTP_PASSWORD"
    sender: str = "finpatrol@localhost"
    sender_name: str = "互联网金融风险巡查预警"
    ca_file: str | None = None
    """Extra CA bundle for a server certificate signed by a private CA."""
    timeout: Seconds = 30
    retry_base: Seconds = 30
    retry_max: Seconds = 3600
    """Backoff doubles from ``retry_base`` up to ``retry_max``; retries never stop."""

    def warnings(self) -> list[str]:
        """A sender no mail relay accepts (``finpatrol@localhost``, the default) while mail goes out by SMTP."""
        domain = self.sender.rpartition("@")[2].lower().rstrip(".")
        if self.host is None or ("." in domain and not domain.endswith(".localhost")):
            return []
        unset = " (smtp.sender is not set)" if self.sender == SmtpConfig.model_fields["sender"].default else ""
        return [f"smtp.sender: mail to {self.host} goes out From {self.sender}{unset}, which mail relays refuse or "
                "file as spam; set smtp.sender to an address of the office's own mail domain"]

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]
