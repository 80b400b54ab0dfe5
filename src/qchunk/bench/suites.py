"""The benchmark suites behind ``qchunk bench`` and which sizes each selection runs.

=========  ==========================================================================================
suite      measures
=========  ==========================================================================================
update     update throughput, compile time, acting latency per agent and preset; update cost vs h and N
eval       a 50-episode evaluation, batched + parallel vs serial per-step (``eval_speedup``), peak memory
data       OGBench file loading, chunk sampling per h, replay-buffer peak memory at 1M and 10M
seeds      S = 1, 2, 4, 8 agents updated in one jitted call (``jax.vmap`` and ``lax.map``)
loop       the offline phase of ``qchunk train`` vs the update's per-step rate (scan blocks, device sampling)
e2e        wall-clock of a fixed 20K + 20K-step training run, split into update / sampling / env / eval
=========  ==========================================================================================

Selections: ``quick`` (the default of ``qchunk bench``) runs update (quick preset only), eval, data and
seeds at quick sizes, in under 5 minutes on a 2-core CPU; ``all`` runs every suite at full size, e2e
included (tens of minutes on a CPU, mostly e2e and the paper-preset rows); a suite name runs that suite
at full size, or at quick size with ``--quick``. Each suite writes ``<out_dir>/<suite>.json`` as soon as it
finishes (see :mod:`qchunk.bench.results`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qchunk.bench.results import load_average, markdown_summary, read_documents, rounded, write_document

if TYPE_CHECKING:
    from qchunk.bench.args import BenchArgs

#: Suites in the order they run.
SUITE_NAMES: tuple[str, ...] = ("update", "eval", "data", "seeds", "loop", "e2e")
#: The suites of the quick set.
QUICK_SET: tuple[str, ...] = ("update", "eval", "data", "seeds")


def selection(args: BenchArgs) -> tuple[tuple[str, ...], bool]:
    """The suites ``args`` select and whether they run at quick size."""
    suite = args.suite or "quick"
    if suite == "quick":
        return QUICK_SET, True
    if suite == "all":
        return SUITE_NAMES, False
    return (suite,), args.quick


def _update(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.update_suite import UpdateSettings, run_update

    make = UpdateSettings.quick if quick else UpdateSettings.full
    return run_update(make(agent=args.agent, preset=args.preset, domain=args.domain, seed=args.seed))


def _eval(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.eval_speed import EvalSpeedSettings, run_eval_speed

    make = EvalSpeedSettings.quick if quick else EvalSpeedSettings.full
    return run_eval_speed(make(agent=args.agent, workers=args.workers, seed=args.seed))


def _data(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.data_bench import DataSettings, run_data

    settings = DataSettings.quick(seed=args.seed) if quick else DataSettings.full(seed=args.seed)
    return run_data(settings, args.dataset_dir, args.workers)


def _seeds(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.seeds import SeedsSettings, run_seeds

    make = SeedsSettings.quick if quick else SeedsSettings.full
    return run_seeds(make(agent=args.agent, seed=args.seed))


def _loop(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.loop import LoopSettings, run_loop

    make = LoopSettings.quick if quick else LoopSettings.full
    return run_loop(make(agent=args.agent, seed=args.seed), args.dataset_dir, args.workers)


def _e2e(args: BenchArgs, quick: bool) -> dict[str, Any]:
    from qchunk.bench.e2e import E2ESettings, run_e2e

    # one protocol: --quick does not shrink it (a smaller run would not be the fixed protocol)
    return run_e2e(E2ESettings(agent=args.agent or "qc-fql", seed=args.seed), args.dataset_dir, args.workers)


#: Suite name -> runner taking the CLI arguments and the quick flag.
RUNNERS: dict[str, Callable[[BenchArgs, bool], dict[str, Any]]] = {
    "update": _update, "eval": _eval, "data": _data, "seeds": _seeds, "loop": _loop, "e2e": _e2e,
}


def _headline(suite: str, results: dict[str, Any]) -> str:
    if suite == "update":
        return ", ".join(f"{r['agent']}/{r['preset']} {r['updates_per_s']:.3g}/s" for r in results["agents"])
    if suite == "eval":
        modes = results["modes"]
        peak = results.get("peak_rss_mb")
        return (f"eval_speedup {results['eval_speedup']:.2f}x ({results['agent']}: serial per-step "
                f"{modes['serial_per_step']['seconds']:.1f} s vs batched {modes['batched_parallel']['seconds']:.1f} s"
                + (f", peak {peak:.0f} MB with {results['envs']} envs open" if peak is not None else "") + ")")
    if suite == "data":
        return ", ".join(f"{r['capacity']:,} rows: peak {r['peak_rss_mb']:.0f} MB" for r in results["memory"]
                         if r.get("peak_rss_mb") is not None)
    if suite == "seeds":
        return ", ".join(f"S={r['seeds']}: {r['updates_per_s']:.3g}/s"
                         + (f" ({r['ratio_to_1']:.2f}x)" if r["ratio_to_1"] is not None else "")
                         for r in results["rows"])
    if suite == "loop":
        return ", ".join(f"{r['agent']} block {r['scan_block']} {r['sample_on']}: {r['ratio_to_bench']:.2f}x bench"
                         for r in results["rows"])
    return f"{results['wall_s'] / 60:.1f} min, shares " + ", ".join(
        f"{k} {100 * v:.0f}%" for k, v in results["time_share"].items())


def run_suites(args: BenchArgs) -> dict[str, dict[str, Any]]:
    """Run the suites ``args`` select, writing each one's document; returns the results by suite."""
    suites, quick = selection(args)
    t_all = time.perf_counter()
    out = {}
    for suite in suites:
        print(f"[bench] {suite} ({'quick' if quick else 'full'} size) ...", flush=True)
        load = load_average()
        t0 = time.perf_counter()
        results = rounded(RUNNERS[suite](args, quick))
        wall = time.perf_counter() - t0
        path = write_document(args.out_dir, suite, results, quick=quick, wall_s=wall, load_before=load)
        print(f"[bench] {suite}: {_headline(suite, results)}  ({wall:.0f} s, {path})", flush=True)
        out[suite] = results
    print(f"[bench] done in {time.perf_counter() - t_all:.0f} s\n")
    print(markdown_summary({k: v for k, v in read_documents(args.out_dir).items() if k in suites}))
    return out
