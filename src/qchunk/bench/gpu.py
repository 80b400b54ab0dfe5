"""The GPU check (``bash bench/gpu.sh``): what the CPU benchmarks cannot tell, in one run of at most 8 minutes.

1. ``gpu-update.json``: update throughput of qc, qc-fql and qam at the paper preset (cube-double sizes, batch
   256) for S = 1 and S = 8 seeds in one jitted update (the ``seeds`` suite's measurement, the multi-seed
   loop's kernel; ``vmap``, what ``--seed-axis auto`` picks on a GPU), plus ``bench``'s per-step and ``lax.scan``
   rates and acting latency at S = 1.
2. ``gpu-e2e.json``: the main job's run (qc-fql, quick preset, puzzle-3x3 task1 dense, 20K offline + 20K online
   steps, 50-episode evaluations every 10K steps, a 100-episode generated dataset) with ``--sample-on device``,
   timed (the ``e2e`` suite's document).

``--dry-run`` runs the same path at tiny sizes (2x16 networks, batch 8, S = 1 and 2, a 2-episode dataset,
30 + 30 steps, no separate ``bench`` call) on whatever backend there is, in a temporary directory unless
``--out-dir`` is given, so the script is known to work before a GPU is lent.
Each document is written as soon as its part finishes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AGENTS = ("qc", "qc-fql", "qam")
TINY = {"actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "flow_steps": 3, "num_samples": 4,
        "batch_size": 8}


def update_part(dry_run: bool) -> dict[str, Any]:
    """Paper-preset update throughput per agent at S = 1 and S = 8 (dry run: tiny networks, S = 1 and 2)."""
    from qchunk.bench.seeds import SeedsSettings, run_seeds
    from qchunk.bench.update import bench_agent

    out = []
    for agent in AGENTS:
        tiny = TINY if dry_run else {}
        overrides = {k: v for k, v in tiny.items() if not (k == "num_samples" and agent != "qc")}
        settings = SeedsSettings(agent=agent, preset="paper", seeds=(1, 2) if dry_run else (1, 8),
                                 steps=2 if dry_run else 10, rounds=1 if dry_run else 2, modes=("vmap",),
                                 agent_overrides=overrides)
        res = run_seeds(settings)
        row = {"agent": agent, "rows": res["rows"]}
        if not dry_run:  # bench's own path (tested elsewhere); the dry run saves its compilations
            single = bench_agent(agent, "paper", steps=10, act_repeats=5, scan=True)
            row.update({k: single[k] for k in ("updates_per_s", "scan_updates_per_s", "compile_s", "act_ms")})
        out.append(row)
        print(f"[gpu] {agent}: " + ", ".join(f"S={r['seeds']} {r['updates_per_s']:.3g}/s" for r in res["rows"])
              + (f", lax.scan {row['scan_updates_per_s']:.3g}/s" if "scan_updates_per_s" in row else ""), flush=True)
    return {"preset": "paper", "domain": "cube-double", "dry_run": dry_run, "agents": out}


def e2e_part(dry_run: bool, dataset_dir: Path, workers: int | None) -> dict[str, Any]:
    """The main job's run with ``--sample-on device``, timed (dry run: 2 episodes of data, 30 + 30 steps)."""
    from qchunk.bench.e2e import E2ESettings, run_e2e

    main_job = dict(task="puzzle-3x3-play-singletask-task1-v0", sparse=False, sample_on="device")
    if dry_run:
        settings = E2ESettings(**main_job, dataset_episodes=2, dataset_episode_steps=101, offline_steps=30,
                               online_steps=30, eval_every=30, eval_episodes=2, log_every=15, start_training=10,
                               episode_length=30, agent_overrides={k: v for k, v in TINY.items() if k != "num_samples"})
    else:
        settings = E2ESettings(**main_job)
    return run_e2e(settings, dataset_dir, workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash bench/gpu.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on any backend: checks the whole path")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where gpu-update.json and gpu-e2e.json go (default bench/results; with --dry-run a "
                             "temporary directory)")
    parser.add_argument("--dataset-dir", type=Path, default=Path("data/bench"),
                        help="cache of the generated OGBench dataset (default data/bench)")
    parser.add_argument("--workers", type=int, default=None, help="dataset generation and evaluation processes")
    parser.add_argument("--parts", default="update,e2e", help="comma-separated parts to run (update, e2e)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in ("update", "e2e")]
    if bad or not parts:
        print(f"error: --parts takes update and/or e2e, got {args.parts!r}", file=sys.stderr)
        return 2
    from qchunk.errors import QchunkError
    from qchunk.fileio import require_writable

    out_dir = args.out_dir
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="qchunk-gpu-dry-run-")) if args.dry_run else Path("bench/results")
    try:
        require_writable(out_dir, "--out-dir", is_dir=True)
        if "e2e" in parts:
            dataset_dir = Path(tempfile.mkdtemp(prefix="qchunk-gpu-data-")) if args.dry_run else args.dataset_dir
            require_writable(dataset_dir, "--dataset-dir", is_dir=True)
    except QchunkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import jax

    from qchunk.bench.results import load_average, rounded, write_document

    backend = jax.default_backend()
    print(f"[gpu] backend {backend} ({jax.devices()[0].device_kind}){', dry run' if args.dry_run else ''}", flush=True)
    if backend == "cpu" and not args.dry_run:
        print("warning: no GPU backend (jax sees only the CPU); measuring the CPU anyway", file=sys.stderr)
    t_all = time.perf_counter()
    for part in parts:
        load, t0 = load_average(), time.perf_counter()
        results = update_part(args.dry_run) if part == "update" else e2e_part(args.dry_run, dataset_dir, args.workers)
        results["backend"] = backend
        path = write_document(out_dir, f"gpu-{part}", rounded(results), quick=args.dry_run,
                              wall_s=time.perf_counter() - t0, load_before=load)
        print(f"[gpu] {part}: {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    print(f"[gpu] done in {time.perf_counter() - t_all:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
