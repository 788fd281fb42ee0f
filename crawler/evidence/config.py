"""The ``evidence:`` block of patrol.yaml: what is archived and how WARC files rotate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EvidenceConfig(BaseModel):
    """Evidence settings.

    archive: ``hits`` writes WARC records for pages that produced a hit (when the
    hit is new or the page bytes changed); ``all`` also for every other fetched
    page whose bytes are new. max_file_mb: a WARC file is closed and a new one
    started before it would grow past this size (files also rotate each UTC day).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    archive: Literal["hits", "all"] = "hits"
    max_file_mb: float = Field(100, gt=0, le=10_000)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)
