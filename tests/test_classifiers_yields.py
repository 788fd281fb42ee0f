"""Yield claims: numbers, ranges, 分/厘, daily and monthly rates, amounts -> annual %."""

from __future__ import annotations

import pytest

from classifiers import classify


def _claims(text):
    return classify(text, kind="ad").yields


@pytest.mark.parametrize("text,low,high,period", [
    ("年化12%", 12, 12, "year"),
    ("年化收益率高达18%", 18, 18, "year"),
    ("预期收益8%-12%", 8, 12, "year"),
    ("预期年化收益率11%至13%", 11, 13, "year"),
    ("年化8～12%", 8, 12, "year"),
    ("年化收益率最高15%", 15, 15, "year"),
    ("月息2分", 24, 24, "month"),
    ("月息8厘", 9.6, 9.6, "month"),
    ("年息3分", 30, 30, "year"),
    ("月利率1.5%", 18, 18, "month"),
    ("日息0.5%", 182.5, 182.5, "day"),
    ("日息千分之五", 182.5, 182.5, "day"),
    ("七日年化3.2%", 3.2, 3.2, "seven_day"),
    ("年化8%+0~15%", 8, 23, "year"),
    ("每个月稳定收益8%", 96, 96, "month"),
    ("每月收益回报8%", 96, 96, "month"),
    ("月息1分2", 14.4, 14.4, "month"),
])
def test_normalised_to_annual_percent(text, low, high, period):
    (c,) = _claims(text)
    assert c.low_annual_pct == pytest.approx(low)
    assert c.high_annual_pct == pytest.approx(high)
    assert c.period == period
    assert text[c.start:c.end] == c.text


@pytest.mark.parametrize("text,quoted,annual,period", [
    ("投资收益每月2%，稳定可靠", "每月2%", 24, "month"),
    ("理财收益 月化收益率3%", "月化收益率3%", 36, "month"),
    ("高收益 年化收益率8%-18%，是银行定期存款的6倍", "年化收益率8%-18%", 18, "year"),
    ("利息每天0.1%", "每天0.1%", 36.5, "day"),
])
def test_a_word_naming_its_period_takes_the_figure_from_a_yield_word_just_before_it(text, quoted, annual, period):
    """A heading (高收益) or a plain yield word run into the claim does not set its period or its quote."""
    (c,) = _claims(text)
    assert (c.text, c.period) == (quoted, period)
    assert c.high_annual_pct == pytest.approx(annual)


def test_amount_based_return():
    (c,) = _claims("投资1万元，每月返息300元")
    assert c.high_annual_pct == pytest.approx(36.0)
    assert c.period == "month"
    (d,) = _claims("投资5万元，每月固定返还2000元")
    assert d.high_annual_pct == pytest.approx(48.0)
    assert d.promised


def test_promised_flag():
    assert _claims("固定年化收益12%，保本保息")[0].promised
    assert not _claims("预期年化收益12%")[0].promised


def test_offsets_with_fullwidth_and_spaces():
    text = "年化收益率 最高 １３．５％ 立即加入"
    (c,) = _claims(text)
    assert c.text == text[c.start:c.end]
    assert c.high_annual_pct == pytest.approx(13.5)


def test_high_yield_from_claims_and_ceiling_boundary():
    assert "high_yield" in classify("年化收益15%，100元起投", kind="ad").labels
    assert "high_yield" in classify("日息0.5%", kind="ad").labels
    assert "high_yield" not in classify("年化收益6%，100元起投", kind="ad").labels
    # The ceiling is reached at 10 %: the labelled dev data treats 年化10% as high_yield.
    assert "high_yield" in classify("年化10% 新手特权", kind="platform_page").labels


@pytest.mark.parametrize("text", [
    "极速借款，日息低至0.02%，最高可借20万，立即申请。",   # a borrowing cost
    "淘宝返利网，购物返利最高50%，先领券再下单。",          # a shopping rebate
    "每天2次1分钱优惠",                                     # 分钱 is not 分 interest
    "大地熊公告预计2021年净利润同比增长174%-207%。",         # not a yield
])
def test_not_advertised_returns(text):
    assert "high_yield" not in classify(text).labels


@pytest.mark.parametrize("text, expected", [
    # The figure after another period's yield word is that word's: 2 % a month, then 24 % a year.
    ("月息2分（年化24%），按月付息", [("月息2分", 24.0, "month"), ("年化24%", 24.0, "year")]),
    ("月息1分2（年化利率14.4%）", [("月息1分2", 14.4, "month"), ("年化利率14.4%", 14.4, "year")]),
    ("日化1%（年化365%）", [("日化1%", 365.0, "day"), ("年化365%", 365.0, "year")]),
    # A percentage of safety is not a return.
    ("投资人本金和利息100%安全，本息100%保障", []),
])
def test_each_figure_belongs_to_its_own_yield_word(text, expected):
    assert [(c.text, c.high_annual_pct, c.period) for c in _claims(text)] == expected


def test_reporting_context_keeps_the_claim_but_withholds_the_label():
    v = classify("警方通报，该平台以年化18%的高收益为诱饵吸引投资者。", kind="news")
    assert v.yields and v.yields[0].high_annual_pct == 18
    assert "high_yield" not in v.labels
