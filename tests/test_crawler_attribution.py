"""Attribution by name reads a post as the classifier and search read it: width and script folded."""

from __future__ import annotations

from classifiers.tokenize import query_tokens, tokenize
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


def test_a_post_on_a_forum_registered_as_a_target_is_of_the_institution_it_names_not_of_the_forum():
    """A channel or source result that lands on the forum's pages: the forum's domain says nothing of
    whom the post is about, and its name, in every page's header, does not count."""
    forum = Target(id="forum", name="江津生活论坛", business="other", kind="forum", urls=("http://127.0.0.1:7/",))
    attributor = Attributor([XYB, POS, forum])
    post = "http://127.0.0.1:7/thread-1.html"
    found = attributor.attribute([post], "", "江津生活论坛 > 理财版\n鑫盈宝提现不了，有人一起维权吗")
    assert (found.target_id, found.reason) == ("xinyingbao", "name"), found
    assert attributor.attribute([post], "", "江津生活论坛 > 灌水区\n今天天气不错") is None
    assert attributor.attribute(["http://127.0.0.1:9/promo.html"], "", "江津生活论坛").target_id == "xinyingbao", \
        "an institution's own site is still attributed by its domain"


def test_names_are_found_as_whole_words():
    jin = Target(id="jinfu", name="重庆鑫隆宝金服信息技术有限公司", aliases=("金服",), business="p2p",
                 urls=("http://127.0.0.1:6/",))
    attributor = Attributor([XYB, jin])
    assert attributor.mentions("在鑫盈宝平台投资，鑫盈宝提现难") == {"xinyingbao": 2}, "inside a sentence, every time"
    assert attributor.by_name("某某金服平台暴雷").target_id == "jinfu"
    assert attributor.by_name("本公司金服务热线") is None, "金服 is not a word of 金服务"


def test_attribution_leaves_search_terms_as_every_other_process_cuts_them():
    """A crawl worker or the CLI cutting a query never met the targets' names; a page indexed in
    the process that attributes must get the same terms, or a query misses it."""
    text = "鑫隆宝金服逾期了，在鑫隆宝金服维权"
    before = (tokenize(text), tokenize(text, for_index=True), query_tokens("鑫隆宝金服"))
    attributor = Attributor([Target(id="xlb", name="鑫隆宝金服", business="p2p", urls=("http://127.0.0.1:5/",))])
    assert attributor.mentions(text) == {"xlb": 2}
    assert (tokenize(text), tokenize(text, for_index=True), query_tokens("鑫隆宝金服")) == before
