"""Open the state DB: engine, schema, and the small helpers every store module shares."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from crawler.store.models import Base

logger = logging.getLogger(__name__)

IN_CHUNK = 500
"""Bound parameters per IN (): well under SQLite's oldest limit of 999."""


def in_chunks(values: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    """Slices of at most ``size`` of ``values``, one IN () list each."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A time in UTC: a naive one is UTC (SQLite returns stored times naive, and every stored
    time is UTC); an aware one is converted, since SQLite would keep its wall-clock time."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat(timespec="seconds") if value else None


def sql_time(value: datetime) -> str:
    """The text form SQLAlchemy stores UTC datetimes in on SQLite, for raw comparisons."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def parse_time(value: str) -> datetime:
    """ISO 8601 date or datetime; a date means midnight UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class StateDB:
    """The state DB of one patrol config; cheap to open, safe to open twice."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        added = add_missing_columns(self.engine)
        add_missing_indexes(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        from crawler.store.elastic_queue import watch

        watch(self.session)  # a hit removed or a page gone marks its search document pending, same transaction
        if "hits.replaced_by" in added:
            from crawler.store.changes import backfill_replaced_by

            backfill_replaced_by(self)
        from crawler.store.search import EmbeddedIndex

        self.index = EmbeddedIndex(self) if self.is_sqlite else None

    def execute(self, sql: str, **params):
        with self.engine.begin() as conn:
            return conn.execute(text(sql), params)

    def new_session(self) -> Session:
        return self.session()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "StateDB":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def add_missing_columns(engine: Engine) -> list[str]:
    """Bring a state DB made by an older finpatrol up to the current tables.

    New tables come from ``create_all``; new columns of existing tables are added
    here (nullable, so old rows stay valid). Renames and type changes would need
    a real migration tool; finpatrol only ever adds columns.
    """
    inspector = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            existing = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in existing:
                    continue
                kind = column.type.compile(engine.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append(f"{table.name}.{column.name}")
    if added:
        logger.warning("state DB upgraded: added columns %s", ", ".join(added))
    return added


def add_missing_indexes(engine: Engine, tables: Sequence | None = None) -> list[str]:
    """Create the indexes of ``tables`` (default: every table of the models) that an existing
    state DB lacks; returns their names.

    ``create_all`` makes a missing table with its indexes but adds none to a table that exists,
    so a state DB made by an older finpatrol would keep reading the whole history where a newer
    one reads an index. Building an index on a long history takes a while, once.
    """
    inspector = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in tables if tables is not None else Base.metadata.sorted_tables:
            if not table.indexes or not inspector.has_table(table.name):
                continue
            existing = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in sorted(table.indexes, key=lambda index: index.name):
                if index.name not in existing:
                    index.create(conn)
                    added.append(index.name)
    if added:
        logger.warning("state DB upgraded: added indexes %s", ", ".join(added))
    return added


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets the CLI read while a patrol writes; busy_timeout rides out short locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
