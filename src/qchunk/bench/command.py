"""``qchunk bench``: the benchmark suites, or the single-agent update benchmark on a synthetic batch.

``qchunk bench`` (wired by the CLI to :func:`main`) runs, by default, the quick set of suites
(:mod:`qchunk.bench.suites`: ``update`` at the quick preset, ``eval``, ``data`` and ``seeds`` at quick
sizes; under 5 minutes on a 2-core CPU) and writes ``bench/results/<suite>.json``. ``--suite NAME`` runs
one suite at full size (``--quick`` for its quick size), ``--suite all`` every suite at full size
including the ~10-minute end-to-end run (``e2e``).

Given ``--agent``, ``--preset`` or ``--json`` (and no ``--suite``), it is the original single-agent
benchmark (:func:`qchunk.bench.update.run_bench`).
"""

from __future__ import annotations

from qchunk.agents.registry import agent_spec
from qchunk.bench.args import BenchArgs
from qchunk.bench.update import format_summary, run_bench
from qchunk.errors import require
from qchunk.fileio import require_writable
from qchunk.ownership import refuse_foreign_files


def single_agent_mode(args: BenchArgs) -> bool:
    """Whether ``args`` ask for the original single-agent benchmark rather than the suites."""
    return args.suite is None and (args.agent is not None or args.preset is not None or args.json is not None)


def check_numbers_and_names(args: BenchArgs) -> None:
    """One-line errors (exit 2) for a bad agent name, seed or count, before any dataset is made or timed."""
    if args.agent is not None:
        agent_spec(args.agent)  # the registry's one-line refusal, with the nearest name
    require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    require(args.steps >= 1 and args.act_repeats >= 1,
            f"--steps and --act-repeats must be >= 1, got {args.steps} and {args.act_repeats}")


def main(args: BenchArgs) -> int:
    """``qchunk bench``: the suites (see :mod:`qchunk.bench.suites`) or the single-agent benchmark; prints a
    summary and returns the exit status. Names, numbers and output paths are checked before anything is measured."""
    check_numbers_and_names(args)
    if not single_agent_mode(args):
        from qchunk.bench.results import is_suite_document, result_path
        from qchunk.bench.suites import run_suites, selection

        require_writable(args.out_dir, "--out-dir", is_dir=True)
        refuse_foreign_files([result_path(args.out_dir, suite) for suite in selection(args)[0]], "--out-dir",
                             also=is_suite_document)
        if {"data", "loop", "e2e"} & set(selection(args)[0]):  # the suites that generate datasets
            require_writable(args.dataset_dir, "--dataset-dir", is_dir=True)
        run_suites(args)
        return 0
    if args.json is not None:
        require_writable(args.json, "--json", is_dir=False)
        refuse_foreign_files([args.json], "--json")
    result = run_bench(args)
    print(format_summary(result))
    if args.json is not None:
        print(f"  results written to {args.json}")
    return 0
