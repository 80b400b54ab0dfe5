"""``qchunk sweep``: a grid of independent training runs on Ray, resumable, with a live status table.

Each run is one Ray task (``num_cpus=--cpus-per-run``, ``num_gpus=--gpus-per-run``, a fresh worker process
per run) that calls :func:`qchunk.training.train` on ``OUT/<env>/<agent>[-<variant>]/seed<k>``: a run
directory holding ``result.json`` with ``"finished": true`` is skipped before anything starts, one holding
``config.json`` without it continues from its newest checkpoint, and an empty one starts fresh. Before
any of that, a run directory holding a run made with other settings stops the sweep (exit 2; see
:func:`check_settings_on_disk`), and only then is ``OUT/sweep.json`` written. Ray is a private local instance on
this machine's cores by default, started even where a Ray cluster already runs (``RAY_ADDRESS`` or ``ray
start`` are not joined); ``--ray-address`` joins an existing cluster instead, with that cluster's CPUs
and GPUs (the run directories must then be on a filesystem every node sees).

Ctrl-C (or SIGTERM) asks every running run to stop: it finishes its current online episode, saves a
checkpoint and returns; queued runs are cancelled. A second Ctrl-C stops the runs at once (they continue
from their previous checkpoint). Running the same command again resumes the sweep.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from qchunk.dir_lock import hold
from qchunk.errors import QchunkError
from qchunk.experiments.manifest import MANIFEST, write_manifest
from qchunk.experiments.ray_session import check_resources, ray_session, sigterm_as_interrupt
from qchunk.experiments.ray_task import ERROR_FILE, TASK_MARKER, run_one, worker_env
from qchunk.experiments.settings_on_disk import check_settings_on_disk, setting_differences, settings_conflicts
from qchunk.experiments.status_table import RunStatus, StatusDisplay, format_table, result_text, run_state
from qchunk.experiments.sweep_dir import check_sweep_dir
from qchunk.experiments.sweep_plan import SweepArgs, SweepPlan, format_plan, plan_sweep, validate_runs
from qchunk.signals import deliver_deferred
from qchunk.training.run_dir import RunDir

__all__ = [
    "ERROR_FILE",
    "MANIFEST",
    "TASK_MARKER",
    "RunStatus",
    "SweepArgs",
    "SweepPlan",
    "check_settings_on_disk",
    "execute",
    "format_plan",
    "format_table",
    "main",
    "plan_sweep",
    "run_one",
    "run_state",
    "setting_differences",
    "settings_conflicts",
    "validate_runs",
    "write_manifest",
]


def execute(plan: SweepPlan, *, ray_address: str | None = None, cpus_per_run: float = 1.0,
            gpus_per_run: float = 0.0, local_cpus: int | None = None, refresh: float = 5.0, stream=None) -> int:
    """Run the plan's unfinished runs on Ray and show their progress.

    Returns:
        0 when every run finished, 1 when some failed, 130 when interrupted (Ctrl-C / SIGTERM).
    """
    stream = stream or sys.stdout
    statuses = []
    for spec in plan.runs:
        cfg = spec.config(resume=True, progress=False).resolved()
        st = RunStatus(spec, plan.out / spec.rel_dir, cfg.offline_steps + cfg.online_steps)
        if run_state(st.run_dir) == "finished":
            st.state = "skipped"
            _fill_result(st)
        statuses.append(st)
    todo = [s for s in statuses if s.state != "skipped"]
    skipped = len(statuses) - len(todo)
    print(f"sweep {plan.name}: {len(statuses)} runs in {plan.out} ({skipped} already finished, {len(todo)} to run"
          + (f" of which {sum(run_state(s.run_dir) == 'interrupted' for s in todo)} resume" if todo else "") + ")",
          file=stream, flush=True)
    if not todo:
        print(format_table(statuses, max_rows=60), file=stream)
        return 0
    display = StatusDisplay(statuses, stream)
    eval_workers = max(1, int(cpus_per_run))
    env_vars = worker_env(gpus_per_run)
    # ray.init installs its own SIGTERM handler (exit 1 with a stack dump): SIGTERM must stop the sweep as
    # Ctrl-C does, so ours goes in once Ray has started (until then the CLI defers signals: qchunk.signals)
    with ray_session(ray_address, local_cpus) as ray, sigterm_as_interrupt():
        check_resources(ray, cpus_per_run, gpus_per_run, local=ray_address is None)
        # max_calls=1: a fresh worker process per run (JAX releases its GPU memory only when the process exits);
        # max_retries: a crashed worker or lost node restarts the run, which resumes from its checkpoint
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_calls=1, max_retries=2,
                          retry_exceptions=False)(run_one)
        pending: dict[Any, RunStatus] = {}
        try:
            deliver_deferred()  # a signal the CLI held through the imports and Ray's start stops the sweep here
            for st in todo:
                st.submitted = time.time()
                extra = {"resume": True, "progress": False}
                if "eval_workers" not in st.spec.settings:
                    extra["eval_workers"] = eval_workers
                cfg = st.spec.config(**extra)
                pending[task.remote(cfg.to_dict(), str(st.run_dir), env_vars, cpus_per_run, gpus_per_run)] = st
            display.update(force=True)
            _wait_all(ray, pending, display, refresh)
        except KeyboardInterrupt:
            return _stop(ray, pending, display, stream)
    display.final()
    failed = [s for s in statuses if s.state == "failed"]
    for s in failed:
        print(f"failed: {s.run_dir}: {s.message}", file=sys.stderr)
    return 1 if failed else 0


def _fill_result(st: RunStatus) -> None:
    res = RunDir(st.run_dir).read_result()
    if res is not None:
        st.success, st.offline_success = res.get("final_success"), res.get("offline_success")
    st.refresh()


def _collect(ray, ref, st: RunStatus, display: StatusDisplay) -> None:
    try:
        out = ray.get(ref)
    except Exception as e:  # worker crashed, cancelled, node lost
        name = type(e).__name__
        if "Cancelled" in name:
            started = st.state == "running" or _started(st)
            st.state, st.message = ("interrupted", "stopped") if started else ("cancelled", "")
        else:
            st.state, st.message = "failed", f"{name}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    else:
        st.state, st.message = out["state"], out.get("message", "")
        if st.state == "finished":
            st.offline_success = out.get("offline_success")
    st.refresh()
    if st.state == "finished":
        _fill_result(st)
        display.event(st, f"finished ({result_text(st)})")
    else:
        display.event(st, st.state + (f": {st.message}" if st.message else ""))


def _started(st: RunStatus) -> bool:
    """Whether the run's task has started since it was submitted (its marker is newer)."""
    try:
        return (st.run_dir / TASK_MARKER).stat().st_mtime >= st.submitted - 1
    except OSError:
        return False


def _wait_all(ray, pending: dict, display: StatusDisplay, refresh: float) -> None:
    last = time.monotonic()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(refresh, 1.0))
        for ref in ready:
            _collect(ray, ref, pending.pop(ref), display)
        if ready or time.monotonic() - last >= refresh:
            last = time.monotonic()
            for st in pending.values():
                if st.state == "queued" and _started(st):
                    st.state = "running"
                    display.event(st, "started")
                if st.state == "running":
                    st.refresh()
            display.update()


def _stop(ray, pending: dict, display: StatusDisplay, stream) -> int:
    print(f"\ninterrupted: asking {len(pending)} runs to save a checkpoint and stop (Ctrl-C again to stop them "
          "at once)", file=sys.stderr, flush=True)
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                _collect(ray, ref, pending.pop(ref), display)
    except KeyboardInterrupt:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        for st in pending.values():
            st.state, st.message = "interrupted", "stopped at once; resumes from its previous checkpoint"
    display.final()
    print("sweep interrupted; run the same command again to resume it", file=sys.stderr)
    return 130



def main(args: SweepArgs) -> int:
    """``qchunk sweep``: plan, validate, then run (or print with ``--dry-run``)."""
    if args.ray_address is not None and args.local_cpus is not None:
        raise QchunkError("--local-cpus sizes the private local Ray instance; drop it with --ray-address "
                          "(the cluster's own CPUs are used)")
    plan = plan_sweep(args)
    if args.dry_run:
        if not (plan.recipe is not None and plan.recipe.blocked):
            validate_runs(plan, check_data=False)  # names and settings as the real sweep checks them
        check_sweep_dir(plan.out, (plan.out / r.rel_dir for r in plan.runs))
        conflicts = settings_conflicts(plan)
        print(format_plan(plan, conflicts))
        check_settings_on_disk(plan, conflicts)
        return 0
    if plan.recipe is not None and plan.recipe.blocked:
        raise QchunkError(f"recipe {plan.recipe.name} needs {plan.recipe.blocked}; --dry-run shows its grid")
    validate_runs(plan, check_data=args.ray_address is None)
    check_sweep_dir(plan.out, (plan.out / r.rel_dir for r in plan.runs))  # the user's files: refused, untouched
    with hold(plan.out, "--out"):  # one sweep per directory; each run also locks its own (in train)
        check_settings_on_disk(plan)  # before anything is written: sweep.json must keep describing the runs
        write_manifest(plan, args)
        return execute(plan, ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
                       gpus_per_run=args.gpus_per_run, local_cpus=args.local_cpus, refresh=args.refresh)
