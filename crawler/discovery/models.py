"""Tables for channel and opinion results, on the state DB's shared Base.

``listed_pages``: how a page of a channel or source was found (list page, keyword,
rank, ad slot, advertiser, landing chain, author, publish time, replies) and to
which registered institution it was attributed, with the reason.
``hit_attributions``: the same attribution for each hit, so dossiers find the
channel and opinion hits of an institution. ``candidates``: unregistered sites
(可疑网站) reached from channels or sources whose pages carry promotional
categories, with the company names found on them and the restricted-name screen.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crawler.store.models import Base


class ListedPage(Base):
    __tablename__ = "listed_pages"
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(8))
    """channel | source"""
    origin_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    """Classifier kind the page was classified with."""
    slot: Mapped[bool] = mapped_column(Boolean, default=False)
    """True for the result as listed, False for the page it links to."""
    list_url: Mapped[str] = mapped_column(Text, default="")
    keyword: Mapped[str] = mapped_column(String(255), default="")
    rank: Mapped[int | None] = mapped_column(Integer)
    is_ad: Mapped[bool | None] = mapped_column(Boolean)
    advertiser: Mapped[str] = mapped_column(String(255), default="")
    landing_chain: Mapped[list] = mapped_column(JSON, default=list)
    slot_title: Mapped[str] = mapped_column(Text, default="")
    slot_text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    posted_at: Mapped[str | None] = mapped_column(String(40))
    """ISO 8601 publish time as listed."""
    replies: Mapped[int | None] = mapped_column(Integer)
    attributed_target: Mapped[str | None] = mapped_column(String(64), index=True)
    attribution_reason: Mapped[str | None] = mapped_column(String(16))
    """domain | advertiser | name, or None when no registered institution is concerned."""
    attribution_detail: Mapped[str] = mapped_column(Text, default="")
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HitAttribution(Base):
    __tablename__ = "hit_attributions"
    hit_id: Mapped[int] = mapped_column(ForeignKey("hits.id"), primary_key=True)
    page_id: Mapped[int] = mapped_column(Integer, index=True)
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    """The registered institution the hit is about."""
    reason: Mapped[str] = mapped_column(String(16))
    """domain (the page is on its site) | advertiser (the ad names it) | name (the text names it)"""
    detail: Mapped[str] = mapped_column(Text, default="")
    """What matched: the host, the advertiser and the name, or the names mentioned."""
    origin: Mapped[str] = mapped_column(String(8))
    origin_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Candidate(Base):
    __tablename__ = "candidates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    """host, or host:port when the URL names a port."""
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    """open | promoted | dismissed"""
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    via: Mapped[list] = mapped_column(JSON, default=list)
    """Channels and sources it was reached from (``channel:<id>``)."""
    urls: Mapped[list] = mapped_column(JSON, default=list)
    """Up to 20 URLs of its pages that carried promotional categories."""
    hit_ids: Mapped[list] = mapped_column(JSON, default=list)
    categories: Mapped[list] = mapped_column(JSON, default=list)
    company_names: Mapped[list] = mapped_column(JSON, default=list)
    """Company names found on its pages (footer, ICP line) or as advertiser."""
    icp: Mapped[list] = mapped_column(JSON, default=list)
    """ICP filing numbers shown on its pages (渝ICP备…号)."""
    restricted: Mapped[dict] = mapped_column(JSON, default=dict)
    """company name → restricted words found by ``classifiers.screen_name`` (三(一))."""
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    promoted_target: Mapped[str | None] = mapped_column(String(64))


def ensure_schema(db) -> None:
    """Create these tables on a state DB opened before this module was imported."""
    Base.metadata.create_all(db.engine, tables=[ListedPage.__table__, HitAttribution.__table__,
                                                Candidate.__table__])
