"""Load and validate ``patrol.yaml`` into typed, frozen objects.

Every error names the file, the field path (``targets[3].urls[0]``), the line
where the YAML gives one, and what was expected, because the operator who edits
the target list is not a programmer and must be able to fix it alone.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crawler.alerts.config import AlertsConfig, RoutingConfig, SmtpConfig
from crawler.config_channels import Channels, Sources
from crawler.config_refs import from_config, from_raw, reference_problems
from crawler.config_retention import RetentionConfig
from crawler.config_yaml import (
    alias_loop,
    duplicate_keys,
    field_errors,
    field_path,
    line_index,
    problems,
)
from crawler.evidence.config import EvidenceConfig
from crawler.reports.grading import GradingConfig
from crawler.schedule.config import SchedulesConfig
from crawler.store.elastic_config import ElasticConfig
from crawler.wording import BUSINESS

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "patrol.yaml"
BUSINESS_TYPES = tuple(BUSINESS)  # the codes of crawler.wording's names: p2p, crowdfunding, … other
TARGET_ID = re.compile(r"^[a-z0-9_-]+$")
SPREADSHEET_NUMBER = re.compile(r"\d(\.\d+)?[eE]\+?\d+")
"""``9.15001E+17``: how Excel shows (and exports) a long number it has already cut to 15 digits."""
EXAMPLE_DB_URL = "postgresql://user:password@host/finpatrol or sqlite:////srv/finpatrol.db"


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


def _http_url(value: str) -> str:
    """Checked as strictly as Scrapy will use it, so a bad URL fails here and not mid-patrol."""
    if len(value) > 2000:
        raise ValueError("URL longer than 2000 characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"URL contains a space or control character, got {value!r}: write spaces as %20")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"expected an http(s) URL with a valid host and port (1-65535), got {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL with a host name, got {value!r}")
    if port == 0:
        raise ValueError(f"expected a port from 1 to 65535, got {value!r}")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
HOST_NAME = re.compile(r"^[\w-]+(\.[\w-]+)*$")
"""Labels of letters (any script), digits, '-' or '_'; an IPv4 address matches too."""


def _domain(value: str) -> str:
    """A bare host name, or ``host:port``, as :func:`in_scope` reads it; a common mistake gets a hint."""
    value = value.lower().rstrip(".")
    if "://" in value:
        try:
            host = urlsplit(value).netloc
        except ValueError:
            host = ""
        raise ValueError(f"expected a host name, not a URL, got {value!r}" + (f": write {host}" if host else ""))
    if value.startswith(("*.", ".")):
        bare = value.lstrip("*.")
        raise ValueError(f"expected a bare host name, got {value!r}: write {bare} (it covers its subdomains too)")
    if "/" in value:
        host = value.partition("/")[0]
        raise ValueError(f"expected a host name without a path, got {value!r}: write {host}")
    name, colon, port = value.partition(":")
    if not HOST_NAME.match(name) or (colon and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise ValueError(f"expected a host name like example.com, or host:port, got {value!r}")
    return value


Domain = Annotated[str, AfterValidator(_domain)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Target(_Frozen):
    """A registered institution and the sites the patrol visits for it."""

    id: str
    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    credit_code: str | None = None
    business: Literal[BUSINESS_TYPES]
    urls: tuple[HttpUrl, ...] = Field(min_length=1)
    allowed_domains: tuple[Domain, ...] = ()
    max_pages: int = Field(200, ge=1, le=1_000_000)
    max_depth: int = Field(3, ge=0, le=50)
    render: Literal["auto", "always", "never"] = "auto"
    screenshot: Literal["hits", "always"] = "hits"
    kind: Literal["platform_page", "forum", "complaint", "news", "social_post"] = "platform_page"
    """How the classifier reads the site's pages: an institution's own site speaks for it
    (platform_page); a forum, complaint board or news site registered as a target holds
    posts and reports about others, read as an opinion source's posts are."""
    obey_robots: bool | None = None
    allow_private_networks: bool = False
    """Allow loopback/private addresses inside this target's allowed_domains only."""
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not TARGET_ID.match(value):
            raise ValueError(f"expected lower-case letters, digits, '_' or '-', got {value!r}")
        return value

    @field_validator("credit_code")
    @classmethod
    def _credit_code_format(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9A-Z]{18}", value):
            why = "expected an 18-character 统一社会信用代码 (digits and capital letters)"
            if SPREADSHEET_NUMBER.fullmatch(value):
                why += (f", got {value!r}: a spreadsheet shows a long number so, and keeps only 15 of its digits; "
                        "format the column as text, enter the codes again and export")
            raise ValueError(why)
        return value

    @model_validator(mode="after")
    def _default_domains(self) -> "Target":
        if not self.allowed_domains:
            object.__setattr__(self, "allowed_domains", default_scope(self.urls))
        return self


def default_scope(urls: tuple[str, ...]) -> tuple[str, ...]:
    """Hosts of the start URLs; ``host:port`` when a URL names a port explicitly."""
    scope: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        host = parts.hostname or ""
        entry = f"{host}:{parts.port}" if parts.port else host
        if entry not in scope:
            scope.append(entry)
    return tuple(scope)


def is_public(address: str) -> bool:
    """True for a global unicast IP address: what a patrol may reach without allow_private_networks."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_private_literal(host: str) -> bool:
    """``localhost`` or a non-public IP written in the URL: refused before any DNS lookup."""
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return not is_public(host)
    except ValueError:  # a host name: only its resolved address can tell, at request time
        return False


def in_scope(url: str, scope: tuple[str, ...]) -> bool:
    """``example.com`` covers the host and its subdomains on any port; ``host:port`` one port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for entry in scope:
        name, _, port = entry.partition(":")
        if port:
            if host == name and str(parts.port or "") == port:
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


class PatrolConfig(_Frozen):
    """The whole configuration file."""

    state_dir: Path = Path("var")
    database_url: str | None = None
    allow_private_networks: bool = False
    """Allow loopback/private addresses for every request (demo and tests only)."""
    obey_robots: bool = True
    yield_ceiling: float = Field(10.0, gt=0, le=1000)
    rules_files: tuple[Path, ...] = ()
    concurrency_per_domain: int = Field(4, ge=1, le=64)
    download_timeout: int = Field(30, ge=1, le=600)
    targets: tuple[Target, ...] = ()
    alerts: AlertsConfig = AlertsConfig()
    routing: RoutingConfig = RoutingConfig()
    smtp: SmtpConfig = SmtpConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    elasticsearch: ElasticConfig | None = None
    evidence: EvidenceConfig = EvidenceConfig()
    channels: Channels = ()
    sources: Sources = ()
    grading: GradingConfig = GradingConfig()
    retention: RetentionConfig = RetentionConfig()
    source: Path | None = Field(None, exclude=True)

    @field_validator("targets", "rules_files", "channels", "sources", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        """A key written with nothing after it (``targets:``) is an empty list, not an error."""
        return () if value is None else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """Parsed, not connected: a typo fails here instead of in every command."""
        if value is None:
            return None
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(f"expected an SQLAlchemy URL like {EXAMPLE_DB_URL}") from None
        try:
            url.get_dialect()
        except ArgumentError:
            raise ValueError(f"unknown database kind {url.drivername!r}: expected e.g. {EXAMPLE_DB_URL}") from None
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> "PatrolConfig":
        """Ids that must be unique or must exist, and start URLs in scope, each named at its own field."""
        problems = reference_problems(from_config(self))
        for i, target in enumerate(self.targets):
            for j, url in enumerate(target.urls):
                host = urlsplit(url).hostname or ""
                if not in_scope(url, target.allowed_domains):
                    problems.append((("targets", i, "urls", j), f"{url} is outside allowed_domains "
                                     f"({', '.join(target.allowed_domains)}): the patrol would not fetch it; add {host}"))
        if problems:
            raise field_errors(problems)
        return self

    def warnings(self) -> list[str]:
        """Valid settings that will not work as written: start URLs the network guard will
        refuse, one institution under two ids, a sender address mail relays refuse, alerts
        routed to units that have no e-mail address. ``check-config`` prints them; ``serve``
        and ``alerts send`` log them when they start."""
        found = self._same_institution()
        for i, target in enumerate(self.targets):
            for j, url in enumerate(target.urls):
                host = urlsplit(url).hostname or ""
                if is_private_literal(host) and not (self.allow_private_networks or target.allow_private_networks):
                    found.append(f"{field_path(('targets', i, 'urls', j))}: {host} is a loopback or private address, "
                                 "which the patrol refuses; set allow_private_networks: true on this target if meant")
        found += self.smtp.warnings()
        unaddressed = [unit for unit in self.routing.routed_units() if not self.routing.units[unit].emails]
        if self.alerts.enabled and unaddressed:
            from crawler.alerts.dispatch import unaddressed_dir  # it imports this module

            found.append(f"routing.units: no e-mail address for {', '.join(unaddressed)}; their alerts are only kept "
                         f"in {unaddressed_dir(self)} (set routing.units.<unit>.emails, "
                         "then run `finpatrol alerts send --unaddressed`)")
        return found

    def _same_institution(self) -> list[str]:
        """Targets that share a credit code, a name or a start URL with an earlier one: most
        likely one institution under a mistyped second id, which splits its records in two."""
        found, first = [], {}
        for i, target in enumerate(self.targets):
            keys = [("credit code", target.credit_code), ("name", target.name)]
            keys += [("start URL", str(url).rstrip("/")) for url in target.urls]
            for what, value in keys:
                earlier = first.setdefault((what, value), i) if value else i
                if earlier != i:
                    other = self.targets[earlier].id
                    found.append(f"{field_path(('targets', i, 'id'))}: {target.id!r} has the {what} of "
                                 f"{other!r} ({field_path(('targets', earlier))}): one institution under two ids "
                                 f"splits its hits and dossier; if {target.id!r} is a typo, use {other!r}")
                    break
        return found

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'finpatrol.db'}"

    def target(self, target_id: str) -> Target:
        for target in self.targets:
            if target.id == target_id:
                return target
        raise KeyError(target_id)

    def obeys_robots(self, target: Target) -> bool:
        return self.obey_robots if target.obey_robots is None else target.obey_robots

    def private_scope(self) -> tuple[str, ...]:
        """Sites where private addresses are allowed: the scope of targets that allow them."""
        return tuple(d for t in self.targets if t.allow_private_networks for d in t.allowed_domains)


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: explicit, else $FINPATROL_CONFIG, else ./patrol.yaml."""
    return Path(explicit or os.environ.get("FINPATROL_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | Path) -> PatrolConfig:
    """Read, validate and resolve one YAML file; raise ConfigError with every problem."""
    return parse_config(read_config_text(path), path)


def read_config_text(path: str | Path) -> str:
    """The file's text; ConfigError when it cannot be read or is not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except OSError as e:
        raise ConfigError(path, [f"cannot read: {e}"]) from e
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(path, [f"line {line}: byte 0x{raw[e.start]:02x} is not UTF-8: save the file as UTF-8"]) from None


def parse_config(text: str, path: str | Path = "<string>") -> PatrolConfig:
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(path, [f"{where}invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, ["line 1: expected a mapping of settings at the top level"])
    loop = alias_loop(node)
    if loop is not None:
        raise ConfigError(path, [f"line {loop}: the node anchored here contains an alias of itself"])
    duplicates = duplicate_keys(node)  # reported with every other error, in file order
    lines = line_index(node)
    try:
        config = PatrolConfig.model_validate(data)
    except ValidationError as e:
        found = problems(e.errors() + _unchecked_references(e, data), data, lines, PatrolConfig)
        raise ConfigError(path, _by_line(duplicates + found)) from None
    slips = duplicates + problems([], data, lines, PatrolConfig)
    if slips:
        raise ConfigError(path, _by_line(slips))
    # Absolute, so a path means the same to a crawl subprocess started in another directory.
    base = path.absolute().parent if path.name != "<string>" else Path.cwd()
    state_dir = _resolve(base, config.state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        where = f"line {lines[('state_dir',)]}: " if ("state_dir",) in lines else ""  # default var/ has no line
        raise ConfigError(path, [f"{where}state_dir: expected a directory, but {state_dir} is a file"])
    elastic = config.elasticsearch
    if elastic is not None and elastic.ca_certs is not None:
        ca_certs = _resolve(base, elastic.ca_certs)
        if not ca_certs.is_file():
            key = ("elasticsearch", "ca_certs")
            where = f"line {lines[key]}: " if key in lines else ""
            raise ConfigError(path, [f"{where}elasticsearch.ca_certs: no such file: {ca_certs}"])
        elastic = elastic.model_copy(update={"ca_certs": ca_certs})
    return config.model_copy(
        update={
            "state_dir": state_dir,
            "rules_files": tuple(_resolve(base, p) for p in config.rules_files),
            "database_url": _resolve_sqlite(base, config.database_url),
            "elasticsearch": elastic,
            "source": path,
        }
    )


def _by_line(found: list[str]) -> list[str]:
    """Problems in file order by their ``line N:`` (those without a line first, as ``problems`` puts them)."""
    return sorted(found, key=lambda p: int(m.group(1)) if (m := re.match(r"line (\d+):", p)) else 0)


def _unchecked_references(error: ValidationError, data: dict) -> list[dict]:
    """The id problems of the YAML as written, as pydantic errors, where validation stopped before
    ``_cross_references`` ran (another setting is wrong): every independent error at once."""
    told = {(err["loc"], err["msg"]) for err in error.errors()}
    return [{"type": "value_error", "loc": loc, "msg": why, "input": None}
            for loc, why in reference_problems(from_raw(data)) if (loc, why) not in told]


def _resolve_sqlite(base: Path, database_url: str | None) -> str | None:
    """A SQLite URL's relative file path made absolute against ``base``, as state_dir is."""
    if database_url is None:
        return None
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return database_url
    return url.set(database=str(_resolve(base, Path(url.database)))).render_as_string(hide_password=False)


def _resolve(base: Path, value: Path) -> Path:
    value = value.expanduser()
    return value if value.is_absolute() else (base / value)
