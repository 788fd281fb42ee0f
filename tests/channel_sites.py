"""Local sites imitating ad channels and opinion sources, shared by the channel, opinion,
report and coverage tests (real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

from crawler.demo.server import Reply


def html(title: str, body: str, footer: str = "演示站点 渝ICP备16000000号") -> str:
    return (f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}<div class='footer'>{footer}</div></body></html>")


def result(title: str, link: str, snippet: str, advertiser: str = "", ad: bool = False) -> str:
    label = "<span class='ad-label'>广告</span>" if ad else ""
    adv = f"<span class='adv'>{advertiser}</span>" if advertiser else ""
    return f"<div class='r'>{label}<h3><a href='{link}'>{title}</a></h3><p class='abs'>{snippet}</p>{adv}</div>"


def search_routes(platform: str, rogue: str) -> dict:
    page1 = html("搜索结果", result("鑫盈宝 新手专享", platform + "/promo.html", "保本保息，年化收益率高达18%",
                                      "鑫盈宝官方", ad=True)
                 + result("高收益理财 稳赚不赔", rogue + "/go?src=ad", "保本保息 100%本息保障 随存随取", "金牛理财", ad=True)
                 + result("理财知识：什么是年化收益", "/wiki.html", "介绍年化收益的计算方法。")
                 + "<div class='r'><h3>没有链接的条目</h3></div>")
    page2 = html("搜索结果 第2页", result("原始股认购 内部名额", rogue + "/gp.html",
                                            "原始股认购，内部认购价", "金鼎财富", ad=True)
                 + result("论坛热帖：金鼎财富的理财怎么样", "/bbs.html", "网友讨论重庆金鼎财富管理有限公司的产品。"))
    listing = html("分类信息", "<ul>"
                   "<li class='post'><a class='t' href='/info-1.html'>个人POS机办理 免费领取</a><i>快付通代理</i><em>2016-10-18</em></li>"
                   "</ul>")
    return {
        "/s/1": page1, "/s/2": page2, "/s/3": html("搜索结果 第3页", "<p>没有更多结果</p>"),
        "/wiki.html": html("什么是年化收益", "<p>年化收益是把收益折算为一年的比率。</p>"),
        "/bbs.html": html("金鼎财富的理财怎么样", "<p>有人买过金鼎财富的产品吗？</p>"),
        "/fenlei": listing,
        "/info-1.html": html("个人POS机办理", "<p>个人POS机办理，免费领取POS机，个人POS收款，无需营业执照。</p>"),
    }


def rogue_routes() -> dict:
    footer = "重庆金牛财富管理有限公司 版权所有 渝ICP备16099999号"
    return {
        "/go": Reply(302, {"Location": "/landing.html", "Content-Length": "0"}),
        "/landing.html": html("金牛理财 新手专享", "<p>保本保息，年化收益率高达18%，稳赚不赔，1元起投，随存随取，资金池统一管理。</p>",
                              footer),
        "/gp.html": html("原始股认购", "<p>原始股认购，内部认购价，上市后股价翻10倍，保本保息。</p>", footer),
    }


def platform_routes() -> dict:
    return {
        "/": html("鑫盈宝", "<p>本平台介绍。</p>"),
        "/promo.html": html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>",
                            "重庆鑫盈宝网络科技有限公司 渝ICP备16012345号"),
    }


def forum_row(link: str, title: str, author: str, when: str, replies: int) -> str:
    return (f"<tr class='row'><td class='t'><a href='{link}'>{title}</a></td><td class='a'>{author}</td>"
            f"<td class='d'>{when}</td><td class='n'>{replies}</td></tr>")


def opinion_routes() -> dict:
    feed = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>新闻</title>"
            "<item><title>鑫盈宝平台出现逾期</title><link>/news-1.html</link><author>记者甲</author>"
            "<description><![CDATA[<p>多名投资人反映<b>鑫盈宝</b>逾期</p>]]></description>"
            "<pubDate>Sat, 22 Oct 2016 08:00:00 +0800</pubDate></item>"
            "<item><title>区金融办提示：警惕保本保息陷阱</title><link>/news-2.html</link><author>区金融办</author>"
            "<pubDate>Fri, 21 Oct 2016 10:00:00 +0800</pubDate></item></channel></rss>")
    return {
        "/feed.xml": Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, feed.encode()),
        "/news-1.html": html("鑫盈宝平台出现逾期", "<p>本报讯 多名投资人反映P2P平台鑫盈宝出现大面积逾期，平台公告延期兑付。记者致电未获回应。</p>"),
        "/news-2.html": html("区金融办提示：警惕保本保息陷阱", "<p>凡是宣称保本保息、稳赚不赔的理财产品都要提高警惕。理财非存款，投资须谨慎。</p>"),
        "/board-1.html": html("投资理财版", "<table>"
                              + forum_row("/t-1.html", "鑫盈宝提现困难，三天没到账", "渝江散户", "2016-10-12 20:31", 36)
                              + forum_row("/t-2.html", "周末去哪里玩", "老王", "2016-10-11 09:00", 5) + "</table>"),
        "/board-2.html": html("投资理财版 第2页", "<table>"
                              + forum_row("/t-3.html", "鑫盈宝维权群，明天集体报案", "维权志愿者", "2016-10-20 21:15", 203)
                              + "</table>"),
        "/t-1.html": html("鑫盈宝提现困难，三天没到账", "<p>在鑫盈宝申请提现2万，三天没到账，客服一直占线，提现困难。</p>"),
        "/t-2.html": html("周末去哪里玩", "<p>求推荐江津周边适合带孩子去的地方。</p>"),
        "/t-3.html": html("鑫盈宝维权群，明天集体报案", "<p>鑫盈宝受害人建了维权群，明天上午集体报案，拉横幅讨说法。</p>"),
        "/tousu-1.html": html("投诉列表", "<table>"
                              + forum_row("/c-1.html", "投诉快付通：POS机押金不退", "德感商户", "2016年10月11日", 3)
                              + "</table><a class='next' href='/tousu-2.html'>下一页</a>"),
        "/tousu-2.html": html("投诉列表 第2页", "<table>"
                              + forum_row("/c-2.html", "投诉鑫盈宝：提现一周未到账，平台失联", "投资人A", "2016-10-21 09:30", 12)
                              + "</table>"),
        "/c-1.html": html("投诉快付通：POS机押金不退", "<p>办理快付通POS机交了299元押金，注销后一直不退。</p>"),
        "/c-2.html": html("投诉鑫盈宝：提现一周未到账，平台失联", "<p>鑫盈宝提现一周未到账，客服失联，疑似跑路。</p>"),
    }


LIST_SELECTORS = {"item": "tr.row", "link": "td.t a", "author": "td.a", "date": "td.d", "replies": "td.n"}
