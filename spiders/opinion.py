"""Read opinion sources (三(六) 舆情信息): RSS/Atom feeds, forum boards, complaint boards
and news lists, configured under ``sources:``.

List pages (or the feed) give each post's link, title, author, publish time and
reply count where the source shows them; with ``follow: true`` (the default) the
post page is fetched and classified with the source's kind (forum, complaint,
news, social_post), so a report that quotes a banned phrase is not read as an ad.
Settings: FINPATROL_CONFIG, FINPATROL_TARGETS (source ids; empty = all enabled).
Stats: ``patrol/target/source:<id>/...``, ``listing/source/results``.
"""

from __future__ import annotations

import logging

from crawler.config import PatrolConfig
from spiders.listing_spider import ListingSpider

logger = logging.getLogger(__name__)


class OpinionSpider(ListingSpider):
    name = "opinion"
    origin = "source"

    @classmethod
    def listings(cls, config: PatrolConfig) -> tuple:
        return config.sources
