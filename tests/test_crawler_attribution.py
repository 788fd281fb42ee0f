"""Attribution by name reads a post as the classifier and search read it: width and script folded."""

from __future__ import annotations

from crawler.config import Target
from crawler.discovery.attribution import Attributor

XYB = Target(id="xinyingbao", name="重庆鑫盈宝网络科技有限公司", aliases=("鑫盈宝",), business="p2p",
             urls=("http://127.0.0.1:9/",))
POS = Target(id="posagent", name="重庆快付通信息技术有限公司", aliases=("ＫＦＴ快付",), business="payment",
             urls=("http://127.0.0.1:8/",))


def test_a_post_in_traditional_characters_names_the_institution():
    attributor = Attributor([XYB, POS])
    found = attributor.by_name("鑫盈寶平臺提現不了，大家維權")
    assert (found.target_id, found.reason) == ("xinyingbao", "name"), found
    assert attributor.by_name("重慶鑫盈寶網絡科技有限公司公告").target_id == "xinyingbao", "the full name too"
    assert attributor.by_advertiser("重慶快付通信息技術有限公司").target_id == "posagent"


def test_names_written_in_full_width_or_half_width_find_each_other():
    attributor = Attributor([XYB, POS])
    assert attributor.by_name("kft快付代理，个人POS机办理").target_id == "posagent"
    assert attributor.by_name("本帖与任何机构无关") is None
