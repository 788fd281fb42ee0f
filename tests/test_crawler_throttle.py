"""AutoThrottle: a 304 Not Modified lowers the delay like a 200; errors still cannot."""

from scrapy.core.downloader import Slot
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawler.throttle import AutoThrottle


def adjusted_delay(status: int) -> float:
    crawler = get_crawler(settings_dict={"AUTOTHROTTLE_ENABLED": True, "AUTOTHROTTLE_START_DELAY": 0.5})
    throttle = AutoThrottle(crawler)
    throttle.mindelay, throttle.maxdelay = 0.0, 30.0  # what opening the spider sets
    slot = Slot(concurrency=4, delay=0.5, jitter=0)
    throttle._adjust_delay(slot, 0.001, Response("http://127.0.0.1/", status=status))
    return slot.delay


def test_a_fast_304_lowers_the_delay_like_a_200_and_a_fast_500_does_not():
    assert adjusted_delay(200) < 0.5
    assert adjusted_delay(304) == adjusted_delay(200)
    assert adjusted_delay(500) == 0.5
