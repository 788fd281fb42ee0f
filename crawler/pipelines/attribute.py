"""Attribute pipeline (after store, 820): channel and opinion results → institutions, and
unregistered sites → candidates.

For items found through a channel or source (``item.origin``): records how the page
was found (``listed_pages``), attributes it to a registered target by domain,
advertiser or name (``crawler.discovery.attribution``) and stores the attribution
with its hit (``hit_attributions``). A page reached from the list that is in no
target's scope and carries promotional categories makes its domain a candidate
(``crawler.discovery.candidates``). A hit on the site of a target registered with a
``kind`` other than ``platform_page`` (a forum, a complaint board: posts about others)
is attributed by name to the institution it names most, the target itself excluded.
Other target site pages pass through untouched.
Settings: FINPATROL_CONFIG. Stats: ``attribute/<reason>``, ``attribute/none``,
``discovery/candidates``.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from classifiers.taxonomy import PROMOTIONAL
from crawler.config import in_scope
from crawler.crawl_config import crawl_config
from crawler.discovery.attribution import Attributor, netloc
from crawler.discovery.candidates import company_names, record_candidate
from crawler.discovery.models import HitAttribution, ListedPage, ensure_schema
from crawler.items import PageItem, post_url
from crawler.store.db import StateDB, parse_time
from crawler.store.models import Page

logger = logging.getLogger(__name__)


class AttributePipeline:
    def __init__(self, config, stats, crawler=None):
        self.config = config
        self.stats = stats
        self.crawler = crawler
        self.db: StateDB | None = None
        self.attributor: Attributor | None = None
        self.hosts: dict[str, str] = {}
        self.post_sites: set[str] = set()  # targets whose pages are posts about others

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawl_config(crawler.settings), crawler.stats, crawler)

    def open_spider(self):
        spider = self.crawler.spider
        crawls = getattr(spider, "crawls", {})
        self.post_sites = {t.id for t in self.config.targets if t.kind != "platform_page" and t.id in crawls}
        if not getattr(spider, "origin", "") and not self.post_sites:
            return
        self.db = StateDB(self.config.db_url)
        ensure_schema(self.db)
        self.attributor = Attributor(self.config.targets)
        if getattr(spider, "origin", ""):
            self.hosts = {pid: crawl.listing.host for pid, crawl in crawls.items()}

    def close_spider(self):
        if self.db is not None:
            self.db.close()

    def process_item(self, item: PageItem) -> PageItem:
        if self.db is None or item.page_id is None:
            return item
        if not item.origin:
            if item.target_id in self.post_sites and item.hit_id:
                self._attribute_post(item)
            return item
        try:
            self._record(item)
        except Exception:  # one result's bookkeeping must not lose the crawl
            logger.exception("attribution failed for %s", item.url)
            self.stats.inc_value("attribute/errors")
        return item

    def _attribute_post(self, item: PageItem) -> None:
        """A post on a forum registered as a target: the institution it names, if any."""
        try:
            found = self.attributor.by_name(f"{item.title}\n{item.text}", exclude=(item.target_id,))
            self.stats.inc_value(f"attribute/{found.reason if found else 'none'}")
            if found is None:
                return
            with self.db.new_session() as session, session.begin():
                session.merge(HitAttribution(
                    hit_id=item.hit_id, page_id=item.page_id, target_id=found.target_id, reason=found.reason,
                    detail=found.detail, origin="site", origin_id=item.target_id, at=parse_time(item.fetched_at)))
        except Exception:  # one post's bookkeeping must not lose the crawl
            logger.exception("attribution failed for %s", item.url)
            self.stats.inc_value("attribute/errors")

    def _urls(self, item: PageItem) -> list[str]:
        if item.slot_only:
            return [post_url(item.url)]
        return [*item.landing_chain, item.final_url]

    def _record(self, item: PageItem) -> None:
        list_host = self.hosts.get(item.target_id, "")
        text = "\n".join((item.slot_title, item.slot_text, item.title, item.text))
        found = self.attributor.attribute(self._urls(item), item.advertiser, text, exclude_host=list_host)
        self.stats.inc_value(f"attribute/{found.reason if found else 'none'}")
        when = parse_time(item.fetched_at)
        with self.db.new_session() as session, session.begin():
            if item.verdict is not None:
                labels = list(item.verdict.get("labels", ()))
            else:  # unchanged since the last crawl: the stored verdict
                labels = list(session.get(Page, item.page_id).labels or ())
            row = session.get(ListedPage, item.page_id) or ListedPage(page_id=item.page_id)
            row.origin, row.origin_id, row.kind, row.slot = item.origin, item.origin_id, item.kind, item.slot_only
            row.list_url, row.keyword, row.rank, row.is_ad = item.list_url, item.keyword, item.rank, item.is_ad
            row.advertiser, row.landing_chain = item.advertiser, list(item.landing_chain)
            row.slot_title, row.slot_text, row.author = item.slot_title, item.slot_text, item.author
            row.posted_at, row.replies, row.last_seen = item.posted_at, item.replies, when
            row.attributed_target = found.target_id if found else None
            row.attribution_reason = found.reason if found else None
            row.attribution_detail = found.detail if found else ""
            session.merge(row)
            if item.hit_id and found:
                session.merge(HitAttribution(
                    hit_id=item.hit_id, page_id=item.page_id, target_id=found.target_id, reason=found.reason,
                    detail=found.detail, origin=item.origin, origin_id=item.origin_id, at=when,
                ))
            url = self._urls(item)[-1]
            if set(labels) & PROMOTIONAL and self._unregistered(url, list_host) and not (
                    item.slot_only and self._follows(item)):
                names, icp = company_names(item.body, item.encoding, (item.advertiser,)) if not item.slot_only \
                    else ([item.advertiser] if item.advertiser else [], [])
                record_candidate(session, url=url, via=item.target_id, hit_id=item.hit_id,
                                 categories=[c for c in labels if c in PROMOTIONAL], names=names, icp=icp)
                self.stats.inc_value("discovery/candidates")

    def _follows(self, item: PageItem) -> bool:
        listings = self.config.channels if item.origin == "channel" else self.config.sources
        return any(lst.id == item.origin_id and lst.follow for lst in listings)

    def _unregistered(self, url: str, list_host: str) -> bool:
        if not urlsplit(url).hostname or netloc(url) == list_host:
            return False
        return not any(in_scope(url, t.allowed_domains) for t in self.config.targets)
