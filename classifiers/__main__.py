"""``python -m classifiers [FILE ...]``: classify JSON lines from files or stdin.

Each input line is an object ``{"text": ..., "title"?, "url"?, "kind"?}``; the same
object is written to stdout with ``labels``, ``score``, ``risk``, ``context``,
``findings`` and ``yields`` added. A bad line (invalid UTF-8, invalid JSON, not an
object, no string ``text``) produces ``{"error": ..., "line": N, "file": ...}`` on
stdout, a log message on stderr, and processing continues; the exit status is 1 if any
line was bad, else 0. Options: ``--rules FILE`` (extra rule file, repeatable),
``--ceiling PCT`` (yield ceiling, default 10).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from .engine import Classifier
from .ruleset import RuleFileError

logger = logging.getLogger("classifiers.cli")


def _process(clf: Classifier, name: str, n: int, raw: bytes) -> tuple[dict | None, str | None]:
    if not raw.strip():
        return None, None
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 at byte {e.start}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} (column {e.colno})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    text = obj.get("text")
    if not isinstance(text, str):
        return None, "missing 'text' (a string is required)"
    extra = {k: obj.get(k) for k in ("title", "url")}
    for k, v in extra.items():
        if v is not None and not isinstance(v, str):
            return None, f"'{k}' must be a string"
    kind = obj.get("kind")
    if kind is not None and not isinstance(kind, str):
        return None, "'kind' must be a string"
    verdict = clf.classify(text, title=extra["title"] or "", url=extra["url"] or "", kind=kind)
    return obj | verdict.to_dict(), None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m classifiers", description="Classify JSON lines.")
    ap.add_argument("files", nargs="*", help="JSON-lines files (default: stdin)")
    ap.add_argument("--rules", action="append", default=[], help="extra rule file (repeatable)")
    ap.add_argument("--ceiling", type=float, default=10.0, help="yield ceiling, annual %%")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        clf = Classifier(args.rules, yield_ceiling=args.ceiling)
    except RuleFileError as e:
        logger.error("%s", e)
        return 2
    out = sys.stdout
    bad = 0
    sources = args.files or ["-"]
    for name in sources:
        try:
            fh = sys.stdin.buffer if name == "-" else open(name, "rb")
        except OSError as e:
            logger.error("cannot open %s: %s", name, e)
            out.write(json.dumps({"error": f"cannot open: {e.strerror}", "file": name}, ensure_ascii=False) + "\n")
            bad += 1
            continue
        with contextlib.nullcontext(fh) if name == "-" else fh:
            for n, raw in enumerate(fh, 1):
                try:
                    result, error = _process(clf, name, n, raw)
                except Exception as e:  # batch boundary: one bad item must not stop the run
                    logger.exception("line %d of %s failed", n, name)
                    result, error = None, f"internal error: {type(e).__name__}: {e}"
                if error:
                    bad += 1
                    logger.warning("%s line %d: %s", name, n, error)
                    result = {"error": error, "line": n, "file": "<stdin>" if name == "-" else name}
                if result is not None:
                    out.write(json.dumps(result, ensure_ascii=False) + "\n")
    out.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
