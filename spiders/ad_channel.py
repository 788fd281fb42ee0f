"""Patrol advertising channels (二(四), 三(六)): search-result ads, portals, classifieds,
app listings and social posts, configured under ``channels:``.

For every enabled channel and each of its keywords, list pages 1..``pages`` are
read with the channel's selectors. Every result becomes an item recording the
channel, keyword, rank, whether the slot is an ad, and the advertiser; with
``follow: true`` its landing page is fetched too, with the redirect chain, and
classified like any page. Attribution to registered institutions and discovery
of unregistered sites happen in ``crawler.pipelines.attribute``.
Settings: FINPATROL_CONFIG, FINPATROL_TARGETS (channel ids; empty = all enabled).
Stats: ``patrol/target/channel:<id>/...``, ``listing/channel/results``.
"""

from __future__ import annotations

import logging

from crawler.config import PatrolConfig
from crawler.config_channels import channel_keywords
from spiders.listing import Listed
from spiders.listing_spider import ListingSpider

logger = logging.getLogger(__name__)


class AdChannelSpider(ListingSpider):
    name = "ad_channel"
    origin = "channel"

    @classmethod
    def listings(cls, config: PatrolConfig) -> tuple:
        return config.channels

    def keywords(self, listing) -> list[str]:
        return channel_keywords(listing, self.config.targets)

    def slot_kind(self, listing, listed: Listed) -> str | None:
        """Ad slots are ads; an organic search result's kind is left to the classifier."""
        if listing.kind == "search" and not listed.is_ad and listing.item_kind is None:
            return None
        return listing.result_kind

    def page_kind(self, listing) -> str | None:
        return "social_post" if listing.kind == "social" else "platform_page"
