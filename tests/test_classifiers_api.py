"""Public API of classifiers: taxonomy, verdict shape, each category, negation, context."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from classifiers import CATEGORIES, Category, Classifier, Finding, Verdict, YieldClaim, classify, screen_name


def test_taxonomy_has_the_twelve_stable_ids_in_order():
    assert list(CATEGORIES) == [
        "guaranteed_return", "high_yield", "false_advertising", "fund_pool", "self_financing",
        "illegal_fundraising", "unlicensed_business", "real_estate_finance", "equity_crowdfunding",
        "payment_violation", "collapse_signal", "mass_incident"]
    for cat in CATEGORIES.values():
        assert isinstance(cat, Category)
        assert cat.name_zh and cat.seed_section and cat.lead_unit
        assert cat.severity in ("low", "medium", "high")
    assert CATEGORIES["guaranteed_return"].seed_section.startswith("二(一)1")
    assert CATEGORIES["guaranteed_return"].lead_unit == "江津银监分局"
    assert CATEGORIES["illegal_fundraising"].lead_unit == "区公安局"


@pytest.mark.parametrize("text,kind,label", [
    ("本平台所有产品保本保息，到期还本付息，立即注册。", "ad", "guaranteed_return"),
    ("新手专享标，年化收益率高达18%，100元起投。", "ad", "high_yield"),
    ("国资背景，政府背书，资金绝对安全。", "platform_page", "false_advertising"),
    ("活期宝年化7%，随存随取，当日计息。", "ad", "fund_pool"),
    ("本平台项目均来自集团内部项目，关联企业融资，由母公司担保。", "platform_page", "self_financing"),
    ("原始股认购，上市后翻十倍，推荐一人再奖500元。", "ad", "illegal_fundraising"),
    ("股票配资1:10，资金秒到账。", "ad", "unlicensed_business"),
    ("首付不够？首付贷帮您凑首付，三天放款。", "ad", "real_estate_finance"),
    ("股权众筹项目，保底回购，每年固定分红。", "ad", "equity_crowdfunding"),
    ("个人POS机免费办理，一清机不跳码，信用卡套现秒到。", "ad", "payment_violation"),
    ("聚财宝提现困难三天了，老板失联。", "social_post", "collapse_signal"),
    ("鑫隆贷出借人维权群已有500多人，明天去公司门口拉横幅。", "complaint", "mass_incident"),
])
def test_each_category_fires(text, kind, label):
    v = classify(text, kind=kind)
    assert label in v.labels, v.to_dict()
    assert v.risk != "none" and 0 < v.score <= 1
    assert any(f.category == label and not f.negated for f in v.findings)


@pytest.mark.parametrize("text", [
    "本平台为信息中介，不承诺保本保息，出借人自行承担风险。",
    "本产品为非保本浮动收益型理财产品，过往业绩不代表未来表现。",
    "理财非存款、产品有风险、投资须谨慎。",
    "平台仅提供信息撮合服务，不提供任何担保。",
    "本产品不保本不保息，最终收益以实际为准。",
    "我们承诺：不设资金池、不自融、不承诺保本保息。",
    "本产品不具备保本保息特征。",  # a bank's risk disclosure
    "本产品不具有保本保息功能，本行不对本产品保本保息。",
    "请勿相信任何保本保息的承诺。",
    "出借人资金由江津农商银行存管，安全保障，不设资金池，平台不承诺保本保息。",  # custody is required of P2P
])
def test_negation_and_compliance_never_flag(text):
    v = classify(text, kind="platform_page")
    assert v.labels == (), v.to_dict()
    assert v.risk == "none"


@pytest.mark.parametrize("text,kind,label", [
    ("投资1万元，每月稳拿300元利息，到期还本，公司兜底，本金有保障。", "ad", "guaranteed_return"),
    ("推荐好友投资，即可获得好友投资额10%的奖励，推荐越多赚得越多。", "ad", "illegal_fundraising"),
])
def test_common_promises_and_referral_rewards_are_flagged(text, kind, label):
    assert label in classify(text, kind=kind).labels


def test_traditional_characters_match_the_simplified_rules_with_original_offsets():
    text = "本平台保本保息，穩賺不賠；個人POS機免費辦理。"
    v = classify(text, kind="ad")
    assert {"guaranteed_return", "payment_violation"} <= set(v.labels), v.to_dict()
    found = {f.text for f in v.findings}
    assert "穩賺不賠" in found and "個人POS" in found
    assert all(text[f.start:f.end] == f.text for f in v.findings)
    assert classify("著名的乾坤大挪移，於是", kind="ad").labels == ()  # simplified characters stay as written


@pytest.mark.parametrize("traditional,simplified", [
    ("本平臺不屬於保本保息產品", "本平台不属于保本保息产品"),  # 於 is in GB2312 too: folded in a traditional text
    ("逾期後平臺墊付", "逾期后平台垫付"),
    ("我們的收益是5倍於銀行存款", "我们的收益是5倍于银行存款"),
])
def test_a_traditional_text_gets_the_verdict_of_its_simplified_twin(traditional, simplified):
    assert classify(traditional, kind="ad").labels == classify(simplified, kind="ad").labels


def test_words_that_merely_start_like_a_negation_do_not_cancel_a_claim():
    for text in ("年化收益12%不含奖励保本保息", "老板不对客户食言：保本保息"):
        assert "guaranteed_return" in classify(text, kind="ad").labels, text


def test_a_pos_deposit_refund_is_no_illegal_fundraising():
    """押金全额返还 is a POS agent's terms, not a pyramid scheme's pay-back: no police mail."""
    v = classify("个人POS机免费办理，激活后押金全额返还。", kind="platform_page")
    assert v.labels == ("payment_violation",), v.to_dict()


def test_cancelled_findings_stay_visible_with_the_cue():
    v = classify("本产品不承诺保本保息。", kind="platform_page")
    f = [f for f in v.findings if f.category == "guaranteed_return"]
    assert f and all(x.negated for x in f)
    assert {x.negated_by for x in f} & {"不承诺", "不"}
    assert v.rule_ids == ()


def test_news_quoting_banned_phrases_gets_no_promotional_label():
    text = "记者调查发现，多家违规平台以“保本保息”“年化18%”为噱头吸引老年人投资。"
    v = classify(text, kind="news")
    assert v.context == "reporting"
    assert not set(v.labels) & {"guaranteed_return", "high_yield"}
    promo = [f for f in v.findings if f.category in ("guaranteed_return", "high_yield")]
    assert promo and all(f.negated and f.negated_by for f in promo)
    plain = classify("多家平台宣传保本保息，年化18%。", kind="news")
    assert any(f.negated_by == "reporting" for f in plain.findings)


def test_reporting_context_is_inferred_without_kind():
    v = classify("警方通报：该平台以保本高息为诱饵吸收资金，涉嫌非法吸收公众存款，已立案侦查。")
    assert v.context in ("reporting", "regulator")
    assert "guaranteed_return" not in v.labels
    assert {"illegal_fundraising", "collapse_signal"} <= set(v.labels)


def test_regulator_notice_quoting_the_law_is_clean():
    text = ("网络借贷平台不得设立资金池，不得发放贷款，不得非法集资，不得自融自保、"
            "代替客户承诺保本保息、期限错配、期限拆分、虚假宣传。")
    assert classify(text, kind="regulator").labels == ()
    assert classify(text).labels == ()


def test_collapse_report_in_news_is_a_collapse_signal():
    v = classify("据悉，P2P平台鑫利贷已全面逾期，实控人失联，经侦已介入。", kind="news")
    assert "collapse_signal" in v.labels
    assert v.risk == "high"


def test_generic_industry_commentary_is_not_a_collapse_signal():
    assert classify("一些平台跑路前往往会出现加息促销、提现变慢等迹象。", kind="news").labels == ()


def test_offsets_point_into_the_original_text_and_title():
    title = "Ｐ２Ｐ 快讯"
    text = "本平台  保 本★保 息，年化１８％！"
    v = classify(text, title="鑫盛财富 稳 赚 不 赔", kind="ad")
    for f in v.findings:
        src = text if f.field == "text" else "鑫盛财富 稳 赚 不 赔"
        assert src[f.start:f.end] == f.text
        assert f.text in f.snippet
    gr = [f for f in v.findings if f.rule_id == "gr.principal_and_interest"][0]
    assert gr.text == "保 本★保 息"
    assert any(f.field == "title" and f.category == "guaranteed_return" for f in v.findings)
    assert classify(text, title=title).labels  # title with nothing in it is harmless


def test_verdict_is_frozen_json_ready_and_picklable():
    v = classify("保本保息，年化18%，稳赚不赔。", kind="ad")
    assert isinstance(v, Verdict)
    with pytest.raises(Exception):
        v.labels = ()  # type: ignore[misc]
    d = v.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert set(d) >= {"labels", "score", "risk", "findings", "yields", "context"}
    assert list(v.labels) == sorted(v.labels)
    assert isinstance(v.findings[0], Finding) and isinstance(v.yields[0], YieldClaim)
    assert pickle.loads(pickle.dumps(v)) == v
    clf = pickle.loads(pickle.dumps(Classifier()))
    assert clf.classify("保本保息", kind="ad").labels == ("guaranteed_return",)


def test_yield_ceiling_is_configurable():
    text = "年化收益率12%，100元起投。"
    assert "high_yield" in classify(text, kind="ad").labels
    assert "high_yield" not in Classifier(yield_ceiling=15).classify(text, kind="ad").labels
    assert "high_yield" in Classifier(yield_ceiling=5).classify("年化6%", kind="ad").labels


def test_kind_unknown_is_tolerated():
    assert classify("保本保息", kind="other").labels == ("guaranteed_return",)


@pytest.mark.parametrize("name,scope,expected", [
    ("重庆鑫盛基金管理有限公司", "", ("基金管理",)),
    ("江津某某科技有限公司", "互联网金融信息服务；第三方支付；投资管理", ("金融", "投资管理", "支付")),
    ("重庆ｐ２ｐ网贷科技有限公司", "", ("网贷", "P2P")),
    ("某某股权投资基金管理中心", "", ("基金管理", "股权投资基金")),
    ("西部大宗商品交易中心", "", ("交易中心",)),
    ("江津区小明餐饮店", "餐饮服务", ()),
])
def test_screen_name(name, scope, expected):
    assert screen_name(name, scope) == expected


@pytest.mark.parametrize("text", [
    "记者获悉，鼎益财富的办公场所已被区公安分局经侦大队查封。",
    "#汇鑫宝诈骗公司# 出借人报案半年了，经侦到现在还不立案。",
    "据悉，某网贷平台因违规发标已被地方金融监管局约谈。",
])
def test_named_firm_under_investigation_or_accused_is_a_collapse_signal(text):
    assert "collapse_signal" in classify(text).labels


def test_generic_fraud_warning_is_not_a_collapse_signal():
    v = classify("警方提示：凡是要求先交保证金才能放款的，一律是诈骗，请勿转账。", kind="news")
    assert "collapse_signal" not in v.labels


def test_import_does_not_load_the_engine():
    code = "import sys, classifiers; print('classifiers.engine' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_fingerprint_covers_every_module_a_verdict_comes_from_and_changes_with_the_rules(tmp_path):
    """A module the engine uses but the fingerprint leaves out would let a code change keep stale verdicts."""
    from classifiers.ruleset import VERDICT_MODULES, fingerprint

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, classifiers; classifiers.classify('保本保息'); "
                               "print(' '.join(m for m in sys.modules if m.startswith('classifiers')))"],
        capture_output=True, text=True, check=True).stdout.split()
    modules = {"__init__.py" if m == "classifiers" else m.removeprefix("classifiers.") + ".py" for m in loaded}
    assert modules <= set(VERDICT_MODULES), modules - set(VERDICT_MODULES)

    rules = tmp_path / "office.yaml"
    rules.write_text("category: guaranteed_return\nrules:\n  - id: office.a\n    phrases: [金蛋计划]\n", "utf-8")
    base = fingerprint((rules,), 10)
    assert fingerprint((rules,), 10) == base == Classifier([rules], 10).fingerprint, "stable"
    assert fingerprint((rules,), 12) != base and fingerprint((), 10) != base
    rules.write_text("category: guaranteed_return\nrules:\n  - id: office.a\n    phrases: [银蛋计划]\n", "utf-8")
    assert fingerprint((rules,), 10) != base, "an edited rules file"
