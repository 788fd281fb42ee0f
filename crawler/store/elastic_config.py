"""The ``elasticsearch:`` block of ``patrol.yaml``: where the cluster is and how to index.

Secrets never come from the file: the API key or the user name and password are
read from the environment variables named here (``FINPATROL_ES_API_KEY``, or
``FINPATROL_ES_USERNAME`` + ``FINPATROL_ES_PASSWORD``), so the config can be
committed and shared. TLS certificates are verified unless ``verify_certs`` is
explicitly false.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

API_KEY_ENV = "FINPATROL_ES_API_KEY"
USERNAME_ENV = "FINPATROL_ES_USERNAME"
PASSWORD_ENV = "FINPATROL_ES_PASSWORD"
SECRET_KEYS = ("api_key", "password", "username", "user", "basic_auth", "http_auth")


class ElasticConfig(BaseModel):
    """Connection and indexing settings of the Elasticsearch (or OpenSearch) cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    hosts: tuple[str, ...] = Field(min_length=1)
    """Node URLs, e.g. ``https://es1.example:9200``."""
    flavor: Literal["elasticsearch", "opensearch"] = "elasticsearch"
    """``opensearch`` sends plain ``application/json`` (OpenSearch answers 406 otherwise)."""
    ca_certs: Path | None = None
    """PEM file of the CA that signed the cluster's certificate."""
    verify_certs: bool = True
    index_prefix: str = Field("finpatrol", pattern=r"^[a-z][a-z0-9_-]{0,40}$")
    """Indices, aliases, templates and policies are named ``<prefix>-pages`` etc."""
    origin: str = Field("default", pattern=r"^[a-z0-9_-]{1,64}$")
    """Which state DB the documents come from (a district); part of every document id,
    so several districts can index into one provincial cluster without collisions."""
    pages_retention_days: int = Field(180, ge=1, le=36500)
    """The lifecycle policy deletes page indices this many days after rollover."""
    rollover_max_age: str = Field("30d", pattern=r"^\d+[dh]$")
    rollover_max_primary_shard_size: str = Field("30gb", pattern=r"^\d+(gb|mb)$")
    batch_size: int = Field(500, ge=1, le=10_000)
    request_timeout: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(2, ge=0, le=10)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data):
        if isinstance(data, dict):
            found = [k for k in SECRET_KEYS if k in data]
            if found:
                raise ValueError(
                    f"{', '.join(found)}: credentials are never read from the file; set "
                    f"{API_KEY_ENV}, or {USERNAME_ENV} and {PASSWORD_ENV}, in the environment"
                )
        return data

    @field_validator("hosts")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not host.startswith(("http://", "https://")):
                raise ValueError(f"expected http(s)://host:port, got {host!r}")
        return tuple(h.rstrip("/") for h in value)

    def name(self, family: str) -> str:
        """``pages`` → ``finpatrol-pages`` (alias, template and policy name)."""
        return f"{self.index_prefix}-{family}"


def credentials(environ: dict | None = None) -> dict:
    """Client auth keyword arguments from the environment (empty when none are set)."""
    env = os.environ if environ is None else environ
    api_key = env.get(API_KEY_ENV, "").strip()
    if api_key:
        return {"api_key": api_key}
    user, password = env.get(USERNAME_ENV, ""), env.get(PASSWORD_ENV, "")
    if user:
        return {"basic_auth": (user, password)}
    return {}
