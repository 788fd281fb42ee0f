"""``python -m classifiers`` and robustness: bad lines, empty/huge/odd input never crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from classifiers import classify

REPO = Path(__file__).resolve().parent.parent


def _run(args, stdin: bytes = b""):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "classifiers", *args], input=stdin, cwd=REPO,
                          env=env, capture_output=True, timeout=120)


def test_cli_classifies_and_reports_bad_lines_then_continues():
    lines = [
        json.dumps({"text": "保本保息，年化18%", "kind": "ad", "id": 7}, ensure_ascii=False).encode(),
        b"not json",
        json.dumps({"title": "no text"}).encode(),
        b'{"text": "\xff\xfe broken"}',
        json.dumps({"text": 5}).encode(),
        b"[1, 2]",
        b"",
        json.dumps({"text": "联众贷已经跑路", "kind": "social_post"}, ensure_ascii=False).encode(),
    ]
    r = _run([], b"\n".join(lines) + b"\n")
    assert r.returncode == 1
    out = [json.loads(x) for x in r.stdout.decode("utf-8").splitlines()]
    assert len(out) == 7
    assert out[0]["id"] == 7 and out[0]["labels"] == ["guaranteed_return", "high_yield"]
    assert {"score", "risk", "findings", "yields", "context"} <= set(out[0])
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert set(errors) == {2, 3, 4, 5, 6}
    assert "JSON" in errors[2] and "text" in errors[3] and "UTF-8" in errors[4]
    assert out[-1]["labels"] == ["collapse_signal"]
    assert b"line 4" in r.stderr


def test_cli_reads_files_and_rejects_bad_rules(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "稳赚不赔"}\n', encoding="utf-8")
    r = _run([str(f)])
    assert r.returncode == 0
    assert json.loads(r.stdout)["labels"] == ["guaranteed_return"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    weight: 2\n    category: high_yield\n    phrases: [a]\n", encoding="utf-8")
    r = _run(["--rules", str(bad), str(f)])
    assert r.returncode == 2
    assert f"{bad}:3".encode() in r.stderr


def test_cli_missing_file_is_reported():
    r = _run(["/nonexistent/input.jsonl"])
    assert r.returncode == 1
    assert "error" in json.loads(r.stdout)


@pytest.mark.parametrize("text", [
    "", " ", "\x00\x01\x02保本\x7f保息\x1b[31m", "\ud800保本保息\udfff", "🔥🔥💰年化💰18%🔥",
    "%" * 1000, "年化" * 5000, "\n" * 1000, "保本保息" * 10000,
])
def test_odd_input_never_crashes(text):
    v = classify(text, title=text[:50], url="http://例子.cn/x")
    v.to_dict()
    for f in v.findings:
        src = text if f.field == "text" else text[:50]
        assert src[f.start:f.end] == f.text


def test_one_megabyte_text_is_classified_whole():
    block = "本平台承诺保本保息，年化收益率高达18%。理财非存款，产品有风险。某平台已跑路。普通新闻文本若干。"
    text = (block * (1_000_000 // len(block) + 1))[:1_000_000]
    v = classify(text)
    assert {"guaranteed_return", "high_yield"} <= set(v.labels)
    assert max(f.end for f in v.findings) > 900_000, "findings reach the end of the text"
    json.dumps(v.to_dict(), ensure_ascii=False)


def test_non_string_input_is_a_clear_error():
    with pytest.raises(TypeError, match="text must be str"):
        classify(b"bytes")  # type: ignore[arg-type]
    assert classify(None).labels == ()  # type: ignore[arg-type]
