"""Instructions a worker spends per benchmark page, counted by valgrind, against trafilatura's defaults.

    .venv/bin/python benchmarks/worker_instructions.py [--pages 10]

Wall-clock time on a shared 2-core VM drifts by ±15 % within minutes, so a change of a
few per cent to the workers' CPU cannot be seen in ``patrol_throughput.py``. Instruction
counts can: this runs the worker's whole job (``workers.analyse_job``: extraction, search
tokens, classification) on ``--pages`` pages of ``patrol_throughput``'s site under
callgrind, and the baseline, ``trafilatura.extract`` with its defaults (what a naive
pipeline starts with), on the same pages. Start-up is taken out by a second run on no
pages, so each figure is (instructions with N pages - instructions with 0) / N. Hash
randomisation is fixed; two runs on the same code gave 108.5 and 108.6 M a page.
Prints millions of instructions per page and the ratio job/baseline; a change that makes
the job cheaper shows as a smaller ratio. Needs valgrind (Debian package ``valgrind``);
takes about two minutes. By hand only; never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def child(job: str, pages: int) -> None:
    """Run ``job`` on one warm-up page, then on ``pages`` more; valgrind counts it all."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from patrol_throughput import make_page

    if job == "patrol":
        from crawler.pipelines import workers

        def run(body: bytes) -> None:
            workers.analyse_job(body, "utf-8", "http://127.0.0.1/", None, "platform_page", (), 36.0)
    else:
        import trafilatura

        def run(body: bytes) -> None:
            trafilatura.extract(body.decode("utf-8"))
    bodies = [make_page(n, 2000) for n in range(pages + 1)]
    for body in bodies:
        run(body)


def instructions(job: str, pages: int) -> int:
    """Instructions of a child process that runs ``job`` on ``pages`` pages (plus one warm-up)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               sys.executable, __file__, "--child", job, "--pages", str(pages)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONHASHSEED": "0"})
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"valgrind run of {job} on {pages} pages failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--child", choices=("patrol", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pages)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    runs = [(job, n) for job in ("patrol", "baseline") for n in (0, args.pages)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # one valgrind per core
        counts = dict(zip(runs, pool.map(lambda run: instructions(*run), runs)))
    per_page = {job: (counts[job, args.pages] - counts[job, 0]) / args.pages for job in ("patrol", "baseline")}
    print(f"pages: {args.pages} of patrol_throughput's site, one warm-up page each run")
    print(f"worker job (extract + tokens + classify): {per_page['patrol'] / 1e6:7.1f} M instructions/page")
    print(f"baseline trafilatura.extract (defaults) : {per_page['baseline'] / 1e6:7.1f} M instructions/page")
    print(f"ratio job/baseline                      : {per_page['patrol'] / per_page['baseline']:.2f}x")


if __name__ == "__main__":
    main()
