"""Rule files: operator files extend the lexicon; bad files fail with file, line and why."""

from __future__ import annotations

import textwrap

import pytest

from classifiers import Classifier, RuleFileError
from classifiers.ruleset import RULES_DIR, load_rules


def _write(tmp_path, body: str, name="mine.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


def test_bundled_rules_load_and_cover_every_category():
    rs = load_rules()
    cats = {r.category for r in rs.rules}
    assert len(cats) == 12
    assert len({r.id for r in rs.rules}) == len(rs.rules)
    assert sorted(p.name for p in RULES_DIR.glob("*.yaml"))


def test_operator_file_adds_phrases_without_code(tmp_path):
    p = _write(tmp_path, """\
        category: illegal_fundraising
        rules:
          - id: local.fake_pension
            weight: 1.0
            phrases: [以房养老高息, 养老床位认购]
        cues:
          negation_near: [绝没有]
        """)
    text = "养老床位认购，每年返还10%"
    assert "illegal_fundraising" not in Classifier().classify(text, kind="ad").labels
    v = Classifier([p]).classify(text, kind="ad")
    assert "illegal_fundraising" in v.labels
    assert "local.fake_pension" in v.rule_ids


@pytest.mark.parametrize("body,line,what", [
    ("rules:\n  - id: x.a\n    category: guaranteed_return\n    weight: high\n    phrases: [保本]\n", 4, "weight"),
    ("rules:\n  - id: x.a\n    category: no_such\n    phrases: [保本]\n", 3, "unknown category"),
    ("rules:\n  - id: x.a\n    category: high_yield\n", 2, "phrases"),
    ("rules:\n  - id: x.a\n    category: high_yield\n    pattern: '(unclosed'\n", 4, "regular expression"),
    ("rules:\n  - id: x.a\n    category: high_yield\n    phrases: []\n", 4, "non-empty"),
    ("rules:\n  - id: x.a\n    category: high_yield\n    phrases: [a]\n    colour: red\n", 5, "unknown key"),
    ("rules:\n  - id: gr.principal_and_interest\n    category: high_yield\n    phrases: [a]\n", 2, "duplicate"),
    ("rules:\n  - id: x.a\n    category: high_yield\n    phrases: [a\n", 5, "invalid YAML"),
    ("cues:\n  negation_far: [x]\n", 2, "unknown cue list"),
    ("- just a list\n", 1, "mapping"),
    ("rules:\n  - id: Bad Id\n    phrases: [a]\n", 2, "id"),
])
def test_bad_rule_files_name_file_line_and_problem(tmp_path, body, line, what):
    p = _write(tmp_path, body)
    with pytest.raises(RuleFileError) as ei:
        Classifier([p])
    err = ei.value
    assert err.path == str(p)
    assert err.line == line, str(err)
    assert what in err.message
    assert str(p) in str(err) and f":{line}:" in str(err)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(RuleFileError, match="cannot read"):
        Classifier([tmp_path / "absent.yaml"])
    p = tmp_path / "latin.yaml"
    p.write_bytes(b"rules: [\xff]\n")
    with pytest.raises(RuleFileError, match="cannot read"):
        Classifier([p])


def test_pattern_with_requires_runs_near_its_literal_only(tmp_path):
    p = _write(tmp_path, """\
        category: collapse_signal
        rules:
          - id: local.frozen_accounts
            scope: any
            pattern: '账户[^，。]{0,8}冻结'
            requires: [冻结]
        """)
    clf = Classifier([p])
    assert "local.frozen_accounts" in clf.classify("宏达财富的账户已被法院冻结。").rule_ids
    assert "local.frozen_accounts" not in clf.classify("宏达财富的账户一切正常。").rule_ids
    far = "账户" + "，".join(["正常运营"] * 40) + "冻结"  # the literal is there, the pattern is not
    assert "local.frozen_accounts" not in clf.classify(far).rule_ids


def test_requires_without_pattern_is_reported_with_its_line(tmp_path):
    p = _write(tmp_path, """\
        category: collapse_signal
        rules:
          - id: local.bad
            phrases: [跑路]
            requires: [跑]
        """)
    with pytest.raises(RuleFileError) as e:
        Classifier([p])
    assert e.value.line == 5 and "requires" in e.value.message
