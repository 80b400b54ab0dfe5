"""qchunk's update throughput against the authors' at the same sizes, measured alternately in one run.

Run it with qchunk's Python; it calls ``tools/fidelity/bench_authors.py`` with the authors' environment::

    .venv/bin/python tools/fidelity/update_ratios.py --qam PATH/TO/qam --authors-python AUTHORS_PY \
        --agent rebrac --agent fbrac --preset quick --preset qam --json bench/results/qam-table.json

For every agent and preset, qchunk's single-agent benchmark (``qchunk bench --agent A --preset P``: a synthetic
cube-double batch, the preset's sizes, the median of ``--steps`` jitted updates) and then the authors' update at
the same sizes and settings (``bench_authors.py --sizes P``), one after the other, so that both see the same
machine. ``ratio`` is qchunk's updates/s over the authors'. Each measurement runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def qchunk_rate(agent: str, preset: str, steps: int, domain: str) -> dict:
    """``qchunk bench --agent --preset`` in a fresh process; its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [str(Path(sys.executable).parent / "qchunk"), "bench", "--agent", agent, "--preset", preset,
               "--domain", domain, "--steps", str(steps), "--act-repeats", "3", "--no-scan", "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"qchunk bench {agent} {preset} failed:\n{proc.stderr[-1500:]}")
        return json.loads(out.read_text())


def authors_rate(python: str, qam: Path, agent: str, preset: str, steps: int) -> dict:
    """``bench_authors.py`` in the authors' environment; its result for ``agent``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [python, str(HERE / "bench_authors.py"), "--qam", str(qam), "--agent", agent, "--sizes", preset,
               "--steps", str(steps), "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bench_authors {agent} {preset} failed:\n{proc.stderr[-1500:]}")
        return json.loads(out.read_text())["results"][0]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from bench_authors import BENCH_DOMAIN, METHODS, foreign_json, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qam", type=Path, required=True, help="checkout of github:ColinQiyangLi/qam")
    parser.add_argument("--authors-python", required=True, help="Python of the authors' environment")
    parser.add_argument("--agent", action="append", default=[], help=f"agent ({', '.join(METHODS)}); repeatable")
    parser.add_argument("--preset", action="append", choices=("quick", "qam"), default=[],
                        help="quick (2x256) and/or qam (4x512); repeatable (default both)")
    parser.add_argument("--steps", type=int, default=10, help="timed updates per measurement (default 10)")
    parser.add_argument("--json", type=Path, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    bad = [a for a in args.agent if a not in METHODS]
    if not args.agent or bad or not (args.qam / "experiments" / "reproduce.py").is_file() or args.steps < 1:
        print(f"error: give --agent from {', '.join(METHODS)} (unknown: {bad}), --steps >= 1 and --qam a checkout "
              "of github:ColinQiyangLi/qam", file=sys.stderr)
        return 2
    if foreign_json(args.json):
        print(f"error: {foreign_json(args.json)}", file=sys.stderr)
        return 2
    rows = []
    for preset in args.preset or ["quick", "qam"]:
        for agent in args.agent:
            domain = BENCH_DOMAIN.get(agent, "cube-double")
            ours = qchunk_rate(agent, preset, args.steps, domain)
            theirs = authors_rate(args.authors_python, args.qam, agent, preset, args.steps)
            row = {"agent": agent, "preset": preset, "domain": domain, "qchunk_updates_per_s": ours["updates_per_s"],
                   "authors_updates_per_s": theirs["updates_per_s"],
                   "ratio": ours["updates_per_s"] / theirs["updates_per_s"], "qchunk_compile_s": ours["compile_s"],
                   "authors_compile_s": theirs["compile_s"], "params": ours.get("params"),
                   "load_avg_1m": os.getloadavg()[0]}
            rows.append(row)
            print(f"{agent:8s} {preset:5s} qchunk {row['qchunk_updates_per_s']:7.2f}/s  authors "
                  f"{row['authors_updates_per_s']:7.2f}/s  x{row['ratio']:.2f}", flush=True)
    if args.json:
        out = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu_count": os.cpu_count(), "steps": args.steps,
               "note": "qchunk bench and the authors' update (tools/fidelity/bench_authors.py) alternately, one "
                       "fresh process each, synthetic cube-double batches (cube-triple for qam-f / qam-e)",
               "rows": rows}
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
