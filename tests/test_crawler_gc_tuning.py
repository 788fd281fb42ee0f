"""GC tuning during a crawl: larger batches while the engine runs, Python's defaults after."""

import gc

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.gc_tuning import GcTuning


def test_the_engine_runs_with_the_larger_threshold_and_stopping_restores_python_s_gc():
    before = gc.get_threshold()
    crawler = get_crawler(settings_dict={"FINPATROL_GC_THRESHOLD": 40_000})
    extension = GcTuning.from_crawler(crawler)
    try:
        extension.engine_started()
        assert gc.get_threshold() == (40_000, *before[1:])
        assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's way
        gc.collect(0)
        extension.spider_closed()
    finally:
        extension.engine_stopped()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert crawler.stats.get_value("gc/collections") >= 1


def test_zero_keeps_python_s_defaults():
    crawler = get_crawler(settings_dict={"FINPATROL_GC_THRESHOLD": 0})
    with pytest.raises(NotConfigured):
        GcTuning.from_crawler(crawler)
