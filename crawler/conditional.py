"""Conditional GET for pages a patrol has fetched before.

A re-patrol of an unchanged site then costs one 304 Not Modified per page instead
of a download, a SHA-256, link scanning, and a store of the whole page. Site-patrol
requests (meta ``finpatrol_conditional``) for pages the state DB holds with an ETag
or Last-Modified get If-None-Match / If-Modified-Since. On a 304 the links recorded
at the last full fetch go into the request's meta (``finpatrol_links``), so the
spider follows them without the body. Which pages qualify is decided by
``crawler.store.pages.revalidation_validators`` (never pages the browser rendered),
less the pages whose evidence is still missing (``crawler.evidence.archive``).
Settings: FINPATROL_CONFIG. Stats: ``conditional/asked``, ``conditional/not_modified``,
``conditional/links_unreadable`` (the state DB failed to give a 304's links: the page
is asked for again, whole).
"""

from __future__ import annotations

import logging

from scrapy import signals
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from crawler.config import ConfigError, load_config
from crawler.evidence.archive import uncaptured_pages
from crawler.store.db import StateDB
from crawler.store.pages import revalidation_validators, stored_links

logger = logging.getLogger(__name__)


class ConditionalGetMiddleware:
    def __init__(self, db_url: str | None, archive_all: bool, stats):
        self.db_url = db_url
        self.archive_all = archive_all
        self.stats = stats
        self.db: StateDB | None = None
        self.reader: Connection | None = None
        self.validators: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    @classmethod
    def from_crawler(cls, crawler):
        try:
            config = load_config(crawler.settings.get("FINPATROL_CONFIG"))
        except ConfigError:  # the spider reports config errors; every page is then fetched whole
            config = None
        middleware = cls(config and config.db_url, bool(config and config.evidence.archive == "all"), crawler.stats)
        middleware.crawler = crawler
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self):
        target_ids = list(getattr(self.crawler.spider, "crawls", {}))
        if self.db_url is None or not target_ids:
            return
        self.db = StateDB(self.db_url)
        self.reader = self.db.reader()
        validators = revalidation_validators(self.db, target_ids)
        for key in uncaptured_pages(self.db, target_ids, self.archive_all):
            validators.pop(key, None)
        self.validators = validators  # set last: a failure above leaves every page fetched whole

    def spider_closed(self):
        if self.reader is not None:
            self.reader.close()
        if self.db is not None:
            self.db.close()

    def process_request(self, request):
        if not request.meta.get("finpatrol_conditional"):
            return None
        key = (request.meta.get("finpatrol_target"), request.meta.get("finpatrol_url"))
        etag, modified = self.validators.get(key, (None, None))
        if etag:
            request.headers.setdefault(b"If-None-Match", etag)
        if modified:
            request.headers.setdefault(b"If-Modified-Since", modified)
        if etag or modified:
            request.meta["finpatrol_asked"] = key
            self.stats.inc_value("conditional/asked")
        return None

    def process_response(self, request, response):
        key = request.meta.get("finpatrol_asked")
        if response.status != 304 or key is None:
            return response
        links = self._stored_links(*key)
        if links is None:  # the page left the state DB meanwhile, or it cannot be read: ask again, whole
            del request.meta["finpatrol_asked"]
            request.meta["finpatrol_conditional"] = False
            for header in (b"If-None-Match", b"If-Modified-Since"):
                request.headers.pop(header, None)
            return request.replace(dont_filter=True)
        request.meta["finpatrol_links"] = links
        self.stats.inc_value("conditional/not_modified")
        return response

    def _stored_links(self, target_id: str, url: str) -> str | None:
        """The page's stored links; None when the state DB cannot tell (the page is then
        asked for again, whole). A connection that fails is replaced and tried once more."""
        for attempt in (1, 2):
            try:
                if self.reader is None:
                    self.reader = self.db.reader()
                return stored_links(self.reader, target_id, url)
            except SQLAlchemyError as error:
                logger.warning("reading the stored links of %s failed (attempt %d): %s", url, attempt, error)
                self._drop_reader()
        self.stats.inc_value("conditional/links_unreadable")
        return None

    def _drop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            try:
                reader.close()
            except SQLAlchemyError:
                logger.debug("closing a failed reader failed too", exc_info=True)
