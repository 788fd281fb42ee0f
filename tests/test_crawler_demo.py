"""`finpatrol demo` end to end: what a new user sees after the one setup command."""

from collections import defaultdict
from email import message_from_bytes, policy

import pytest
import yaml
from conftest import cli, json_lines


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One ``finpatrol demo`` run (about 20 s) that the tests below read: (state dir, its result)."""
    state = tmp_path_factory.mktemp("demo") / "demo"
    result = cli("demo", "--state-dir", str(state), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return state, result


def test_demo_patrols_every_institution_twice_and_reports(demo_run):
    state, result = demo_run
    assert "patrol run 1: ok" in result.stdout and "patrol run 2: ok" in result.stdout
    config = str(state / "patrol.yaml")
    targets = yaml.safe_load((state / "patrol.yaml").read_text(encoding="utf-8"))["targets"]
    assert f"Patrol 1: {len(targets)} demo institutions" in result.stdout, "targets counted, not servers"

    labels = defaultdict(set)
    for hit in json_lines(cli("hits", "--config", config, "--json", "--limit", "1000").stdout):
        labels[hit["target"]].update(hit["labels"])
    assert {"guaranteed_return", "high_yield", "fund_pool", "false_advertising"} <= labels["xinyingbao"]
    assert "equity_crowdfunding" in labels["zhongchou"]
    assert "payment_violation" in labels["posagent"]
    assert "guaranteed_return" in labels["gbkfinance"], "the GBK site is decoded and classified"
    assert "guaranteed_return" in labels["jsplatform"], "the JavaScript-built claim is caught"
    assert {"collapse_signal", "mass_incident"} <= labels["forum"]
    assert "compliantbank" not in labels, "the compliant bank page produces no hit"

    screenshot = next(state.glob("export/hit-*/screenshot.png"))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    mails = list((state / "outbox").glob("*.eml"))
    assert mails, "alerts are written as .eml files"
    assert all(b"@demo.invalid>" in m.read_bytes() for m in mails), "each addressed to its unit's demo address"
    assert not (state / "outbox" / "unaddressed").exists()

    changes = json_lines(cli("changes", "--config", config, "--json").stdout)
    assert changes, "the second patrol records what changed"
    assert "保本保息" in cli("search", "保本保息", "--config", config).stdout
    pos = {r["url"].rsplit("/", 1)[-1] for r in json_lines(cli("search", "POS机", "--config", config, "--json").stdout)}
    assert "info-201.html#listed" in pos, "the classified ad says only 个人POS机办理, a lexicon phrase holding POS机"
    assert cli("evidence", "verify", "--config", config).returncode == 0

    all_hits = json_lines(cli("hits", "--config", config, "--json", "--limit", "1000").stdout)
    removed = [h["id"] for h in all_hits if h["removed_at"] and not h["replaced_by"]]
    replaced = [h["id"] for h in all_hits if h["removed_at"] and h["replaced_by"]]
    assert removed, "the second patrol rectifies a claim"
    assert replaced, "and sees one reworded (风险准备金先行赔付 → 资金由合作银行存管), which is not rectified"
    table = cli("hits", "--config", config, "--limit", "1000").stdout.splitlines()
    for hit_id in removed:
        assert "removed" in next(line for line in table if line.startswith(f"│ {hit_id} ")), "the table tells it apart"
    for hit_id in replaced:
        assert "replaced" in next(line for line in table if line.startswith(f"│ {hit_id} "))
    assert "state  removed" in cli("show", str(removed[0]), "--config", config).stdout
    assert "state  replaced by hit" in cli("show", str(replaced[0]), "--config", config).stdout

    some_hit = json_lines(cli("hits", "--config", config, "--json", "--limit", "1").stdout)[0]
    shown = cli("show", str(some_hit["id"]), "--config", config).stdout
    assert all(f"[{f['rule_id']}]" in shown for f in some_hit["findings"]), "rule ids are not taken for markup"
    cut = cli("hits", "--config", config, "--limit", "2")
    assert "the first 2 shown; more may match" in cut.stderr and cut.stdout.count("│ ") > 0
    assert "more may match" not in cli("hits", "--config", config, "--limit", "1000").stderr
    asserted = [f for f in some_hit["findings"] if not f.get("negated")]
    assert all(f"【{' '.join(f['text'].split())}】" in shown for f in asserted), "matched words marked without colour"
    for command in (("show", "99999999999999999999"), ("hits", "--limit", "0")):
        refused = cli(*command, "--config", config)
        assert refused.returncode == 2 and "not in the range" in refused.stderr and "Traceback" not in refused.stderr


def test_demo_raises_the_public_opinion_early_warning(demo_run):
    """The demo's forum and complaint posts are dated days before the run (``__DAYS_AGO_<n>__``), so the
    collapse of 鑫盈宝 is news: a 24-hour spike and its first mass incident, with recent publish dates."""
    state, _ = demo_run
    config = str(state / "patrol.yaml")
    subjects = [m["subject"] for m in json_lines(cli("alerts", "list", "--config", config, "--json",
                                                     "--limit", "1000").stdout)]
    spikes = [s for s in subjects if s.startswith("【舆情预警】重庆鑫盈宝网络科技有限公司：24小时内风险信号")]
    assert spikes, subjects
    assert any(s.startswith("【舆情预警·群体性事件苗头】重庆鑫盈宝网络科技有限公司") for s in subjects), subjects
    bodies = []
    for path in (state / "outbox").glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if str(mail["Subject"]).startswith("【舆情预警"):
            bodies.append(mail.get_body(("plain",)).get_content())
    assert bodies and all("发布于 20" in body and "发布于 2016" not in body for body in bodies), \
        "the posts show this week's publish dates"
