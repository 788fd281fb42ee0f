"""The ``retention:`` block of ``patrol.yaml``: how long a crawl's diagnostics are kept.

A crawl's diagnostics are its two log files in ``state_dir/logs/`` (written by
``finpatrol serve``) and the Scrapy stats kept in its run record. They grow with every
crawl and prove nothing about a site, so ``finpatrol prune`` (and ``serve``, once a
day) removes them after these ages. Evidence never ages out: pages, their versions,
hits, WARC files, changes, alerts and the run records with their per-target counts
are kept whatever this block says (docs/retention.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_DAYS = 36_500
Days = int | None


class RetentionConfig(BaseModel):
    """Ages in days; ``null`` keeps forever."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crawl_logs_days: Days = Field(180, ge=1, le=MAX_DAYS)
    """A healthy crawl's log files, and its run's Scrapy stats cut to a summary, after this many days."""
    unhealthy_crawl_logs_days: Days = Field(730, ge=1, le=MAX_DAYS)
    """The same for a crawl that failed, was partial, crashed, or whose outcome cannot be
    told: they explain a gap in a target's coverage, asked about long after."""

    @field_validator("unhealthy_crawl_logs_days")
    @classmethod
    def _kept_longer(cls, value: Days, info: ValidationInfo) -> Days:
        healthy = info.data.get("crawl_logs_days", 0)  # absent when itself invalid: reported there
        if value is not None and (healthy is None or value < healthy):
            expected = "null, as crawl_logs_days is" if healthy is None else f"at least crawl_logs_days ({healthy})"
            raise ValueError(f"expected {expected}, got {value}: the logs of a crawl that went wrong "
                             "are kept at least as long as those of a good one")
        return value

    @model_validator(mode="after")
    def _unhealthy_follows(self) -> "RetentionConfig":
        """Left out, ``unhealthy_crawl_logs_days`` is never shorter than ``crawl_logs_days``."""
        healthy = self.crawl_logs_days
        if "unhealthy_crawl_logs_days" not in self.model_fields_set and (
                healthy is None or healthy > self.unhealthy_crawl_logs_days):
            object.__setattr__(self, "unhealthy_crawl_logs_days", healthy)
        return self
