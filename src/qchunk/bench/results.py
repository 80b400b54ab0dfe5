"""Benchmark result documents: the machine they were measured on, JSON files, a markdown summary.

Every suite writes ``<out_dir>/<suite>.json`` (default ``bench/results/``) as one document::

    {"suite": "eval", "sizes": "quick" | "full", "created": "2026-01-01T12:00:00+00:00",
     "wall_s": 93.1, "environment": {...}, "results": {...}}

``environment`` records the hardware, the JAX backend, the library versions and the 1-minute load
average before and after the suite (timings taken on a busy machine say so in their own file).
``python -m qchunk.bench.results [DIR]`` prints the markdown table of ``bench/README.md`` from the files.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qchunk.fileio import atomic_write_json
from qchunk.ownership import MARK

#: Where ``qchunk bench`` writes its documents unless told otherwise (relative to the working directory).
DEFAULT_RESULTS_DIR = Path("bench/results")


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        return None


def _version(package: str) -> str | None:
    """The installed version of ``package`` (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Hardware, backend and versions of this process (imports JAX)."""
    import jax
    import numpy as np

    import qchunk

    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "device_count": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": load_average(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "flax": _version("flax"),
        "optax": _version("optax"),
        "numpy": np.__version__,
        "mujoco": _version("mujoco"),
        "ogbench": _version("ogbench"),
        "qchunk": qchunk.__version__,
    }


def result_path(out_dir: str | os.PathLike, suite: str) -> Path:
    """``<out_dir>/<suite>.json``."""
    return Path(out_dir) / f"{suite}.json"


def is_suite_document(path: Path) -> bool:
    """Whether ``path`` is a suite's results document (one written before documents carried qchunk's mark too)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"suite", "environment", "results"} <= set(doc)


def write_document(out_dir: str | os.PathLike, suite: str, results: dict[str, Any], *, quick: bool,
                   wall_s: float, load_before: float | None = None) -> Path:
    """Write one suite's results with the environment (atomically); returns the path."""
    env = environment()
    env["load_avg_1m_before"] = load_before
    doc = {
        "suite": suite,
        "sizes": "quick" if quick else "full",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 2),
        "environment": env,
        "results": results,
        "written_by": MARK,
    }
    path = result_path(out_dir, suite)
    atomic_write_json(path, doc)
    return path


def read_documents(out_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The suite documents found in ``out_dir``, by suite name (unreadable files are skipped)."""
    docs = {}
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "suite" in doc and "results" in doc:
            docs[doc["suite"]] = doc
    return docs


# ---------------------------------------------------------------------- timing helpers
def time_calls(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` successive calls of ``fn`` (each timed to completion by ``fn`` itself)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    """Median of a non-empty list (resists other processes' bursts on a shared machine)."""
    return float(statistics.median(values))


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` with floats rounded to ``digits`` significant digits (recursively), for readable JSON."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


# ---------------------------------------------------------------------- markdown summary
def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float | int) and not isinstance(x, bool):
        return format(x, spec)
    return str(x)


def markdown_summary(docs: dict[str, dict[str, Any]]) -> str:
    """The tables of ``bench/README.md`` from suite documents (missing suites are left out)."""
    out: list[str] = []
    if "update" in docs:
        res = docs["update"]["results"]
        out += ["### update (synthetic cube-double batch, obs 37, action 5, batch 256)", "",
                "| agent | preset | h | N | updates/s | compile s | act ms (1 chunk) | params |",
                "|---|---|---|---|---|---|---|---|"]
        out += [f"| {r['agent']} | {r['preset']} | {r['horizon']} | {_fmt(r.get('num_samples'))} | "
                f"{_fmt(r['updates_per_s'])} | {_fmt(r['compile_s'], '.1f')} | {_fmt(r['act_ms'])} | "
                f"{r['params']:,} |" for r in res.get("agents", [])]
        for name, key in (("horizon_scaling", "horizon"), ("num_samples_scaling", "num_samples")):
            scaling = res.get(name)
            if scaling:
                rows = scaling["rows"]
                out += ["", f"{scaling['agent']} ({scaling['preset']}) update cost vs {key}: " + ", ".join(
                    f"{key[0] if key == 'horizon' else 'N'}={r[key]}: {_fmt(r['step_ms'])} ms" for r in rows)]
        out.append("")
    if "eval" in docs:
        res = docs["eval"]["results"]
        out += [f"### eval ({res['episodes']} episodes of {res['task']}, untrained {res['agent']} "
                f"({res['preset']}), {res['workers']} workers, {res.get('envs', res['episodes'])} envs open)", "",
                "| mode | seconds | episodes/s | env steps/s | policy queries | policy s | peak RSS MB |",
                "|---|---|---|---|---|---|---|"]
        for mode, r in res["modes"].items():
            out.append(f"| {mode} | {_fmt(r['seconds'])} | {_fmt(r['episodes_per_s'])} | "
                       f"{_fmt(r['env_steps_per_s'])} | {r['policy_queries']} | {_fmt(r['policy_s'])} | "
                       f"{_fmt(r.get('peak_rss_mb'))} |")
        out += ["", f"eval_speedup (serial_per_step / batched_parallel): **{_fmt(res['eval_speedup'])}x** "
                f"(with the pool's start-up of {_fmt(res['pool_startup_s'])} s: "
                f"{_fmt(res.get('eval_speedup_with_startup'))}x)", ""]
        for extra in res.get("other_agents", []):
            out += [f"{extra['agent']}: eval_speedup {_fmt(extra['eval_speedup'])}x", ""]
    if "data" in docs:
        res = docs["data"]["results"]
        load = res["load"]
        out += ["### data", "",
                f"load {load['transitions']:,} transitions ({_fmt(load['file_mb'])} MB npz): read "
                f"{_fmt(load['read_npz_s'])} s, load + relabel {_fmt(load['load_ogbench_s'])} s", "",
                "| sampler | h | batches/s | ms/batch |", "|---|---|---|---|"]
        out += [f"| {r['source']} | {r['horizon']} | {_fmt(r['batches_per_s'])} | {_fmt(r['ms_per_batch'])} |"
                for r in res["sampling"]]
        out += ["", "| buffer | expected MB | peak RSS MB | fill s | h=5 batches/s |", "|---|---|---|---|---|"]
        out += [f"| {r['capacity']:,} | {_fmt(r['expected_mb'], '.0f')} | {_fmt(r['peak_rss_mb'], '.0f')} | "
                f"{_fmt(r['fill_s'])} | {_fmt(r['batches_per_s'])} |" for r in res["memory"]]
        out.append("")
    if "seeds" in docs:
        res = docs["seeds"]["results"]
        out += [f"### seeds ({res['agent']} ({res['preset']}) updates of S agents in one jitted call)", "",
                "| S | mode | updates/s (all seeds) | vs S=1 | compile s |", "|---|---|---|---|---|"]
        out += [f"| {r['seeds']} | {r.get('mode', 'vmap') or '-'} | {_fmt(r['updates_per_s'])} | "
                f"{_fmt(r['ratio_to_1'])} | {_fmt(r['compile_s'], '.1f')} |" for r in res["rows"]]
        if res.get("auto_mode"):
            out += ["", f"--seed-axis auto picks {res['auto_mode']} on this backend; its lowest ratio to S=1: "
                        f"{_fmt(res['auto_min_ratio_to_1'])}"]
        out.append("")
    if "loop" in docs:
        res = docs["loop"]["results"]
        out += [f"### loop (offline phase of qchunk train vs bench's per-step rate, {res['preset']} preset, "
                f"{res['env']}, {res['rounds']} interleaved rounds)", "",
                "| agent | scan block | sample on | offline updates/s | bench per-step | bench lax.scan | vs bench |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {r['agent']} | {r['scan_block']} | {r['sample_on']} | {_fmt(r['offline_updates_per_s'])} | "
                f"{_fmt(r['bench_updates_per_s'])} | {_fmt(r['bench_scan_updates_per_s'])} | "
                f"{_fmt(r['ratio_to_bench'])} |" for r in res["rows"]]
        out.append("")
    if "e2e" in docs:
        res = docs["e2e"]["results"]
        share = res.get("time_share", {})
        out += [f"### e2e ({res['agent']}, {res['env']}, {res['offline_steps']:,} offline + "
                f"{res['online_steps']:,} online steps, {res['evaluations']} evaluations of {res['eval_episodes']})",
                "", f"wall-clock {_fmt(res['wall_s'] / 60, '.1f')} min; offline {_fmt(res['offline_updates_per_s'])} "
                f"updates/s, online {_fmt(res['online_steps_per_s'])} env steps/s; time share: "
                + ", ".join(f"{k} {100 * share[k]:.0f}%" for k in ("update", "sampling", "env", "eval", "other")
                            if k in share), ""]
    for suite in ("update", "eval", "data", "seeds", "loop", "e2e"):
        if suite in docs:
            env = docs[suite]["environment"]
            out.append(f"- {suite}: {docs[suite]['sizes']} sizes, {env['backend']} backend, {env['cpu']} "
                       f"x{env['cpu_count']}, jax {env['jax']}, load {env.get('load_avg_1m_before')} -> "
                       f"{env['load_avg_1m']}, {docs[suite]['created']}")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - a convenience for regenerating bench/README.md
    print(markdown_summary(read_documents(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RESULTS_DIR)))
