"""``qchunk bench``: the single-agent benchmark, the suites' machinery at tiny sizes, the serial evaluation."""

from __future__ import annotations

import json
import math
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.bench.args import BenchArgs
from qchunk.bench.command import main, single_agent_mode
from qchunk.bench.update import run_bench, synthetic_batch
from qchunk.errors import QchunkError

#: Tiny networks and batches: the suites' machinery in seconds.
TINY = {"actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "flow_steps": 3, "num_samples": 4,
        "batch_size": 8}


@pytest.mark.slow
def test_bench_main_writes_json_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    args = BenchArgs(agent="fql", preset="quick", steps=2, act_repeats=2, batch_size=16, json=out, scan=False)
    assert main(args) == 0
    result = json.loads(out.read_text())
    for key in ("agent", "preset", "domain", "updates_per_s", "compile_s", "act_ms", "params",
                "scan_updates_per_s", "jax", "device", "cpu_count", "python"):
        assert key in result, key
    assert (result["agent"], result["preset"], result["domain"]) == ("fql", "quick", "cube-double")
    assert result["updates_per_s"] > 0 and result["scan_updates_per_s"] is None  # scan timing off
    assert result["act_ms"] > 0 and result["compile_s"] >= 0
    # fql quick: flow + one-step policy 2x256 over 37+5(+1) inputs, two 2x256 critics
    flow = (43 * 256 + 256) + (256 * 256 + 256) + (256 * 5 + 5)
    onestep = flow - 256
    critics = 2 * ((42 * 256 + 256) + (256 * 256 + 256) + 2 * (2 * 256) + (256 + 1))
    assert result["params"] == flow + onestep + critics
    assert result["batch_size"] == 16 and result["horizon"] == 1 and result["metrics_finite"]
    printed = capsys.readouterr().out
    assert "updates/s" in printed and "fql" in printed and str(out) in printed


def test_run_bench_rejects_unknown_agent():
    with pytest.raises(QchunkError, match="unknown agent"):
        run_bench(BenchArgs(agent="nope"))
    with pytest.raises(QchunkError):
        run_bench(BenchArgs(steps=0))


def test_synthetic_batch_follows_the_batch_contract():
    b = synthetic_batch(64, 5, 37, 5, 0.99, seed=0)
    assert b["observations"].shape == (64, 37) and b["next_observations"].shape == (64, 5, 37)
    assert b["actions"].shape == (64, 5, 5) and np.abs(b["actions"]).max() <= 1.0
    for key in ("rewards", "masks", "valid"):
        assert b[key].shape == (64, 5) and b[key].dtype == np.float32
    # cumulative discounted rewards are non-increasing for rewards in {-1, 0}
    assert np.all(np.diff(b["rewards"], axis=1) <= 1e-6)
    assert set(np.unique(b["masks"])) <= {0.0, 1.0} and set(np.unique(b["valid"])) <= {0.0, 1.0}


def test_every_bench_field_has_a_docstring():
    import ast
    import inspect

    from qchunk.bench import args as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BenchArgs")
    documented = {
        node.target.id
        for node, nxt in zip(cls.body, cls.body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
    }
    assert documented == set(BenchArgs.__dataclass_fields__) >= {"agent", "preset", "domain", "steps", "json"}
    defaults = BenchArgs()
    assert (defaults.agent, defaults.preset, defaults.domain, defaults.json) == (None, None, "cube-double", None)
    assert (defaults.suite, defaults.quick) == (None, False)


def test_selection_of_suites_and_single_agent_mode():
    from qchunk.bench.suites import QUICK_SET, SUITE_NAMES, selection

    assert selection(BenchArgs()) == (QUICK_SET, True) and not single_agent_mode(BenchArgs())
    assert "e2e" not in QUICK_SET and set(QUICK_SET) < set(SUITE_NAMES)
    assert selection(BenchArgs(suite="all")) == (SUITE_NAMES, False)
    assert selection(BenchArgs(suite="eval")) == (("eval",), False)
    assert selection(BenchArgs(suite="eval", quick=True)) == (("eval",), True)
    # the original single-agent benchmark: --agent / --preset / --json without --suite
    assert single_agent_mode(BenchArgs(agent="qc", preset="paper")) and single_agent_mode(BenchArgs(preset="quick"))
    assert not single_agent_mode(BenchArgs(agent="qc", suite="update"))


def test_run_bench_defaults_to_qc_paper(monkeypatch):
    from qchunk.bench import update

    seen = {}
    monkeypatch.setattr(update, "bench_agent", lambda name, preset, *a, **k: seen.update(name=name, preset=preset)
                        or {"agent": name})
    update.run_bench(BenchArgs())
    assert seen == {"name": "qc", "preset": "paper"}


# ---------------------------------------------------------------------- suites at tiny sizes
@pytest.mark.slow
def test_update_suite_rows_and_scaling_reuse_measured_configs():
    from qchunk.bench.update_suite import UpdateSettings, run_update

    res = run_update(UpdateSettings(agents=("qc",), presets=("quick",), steps=1, act_repeats=1, scan=False,
                                    scaling_preset="quick", horizons=(5,), num_samples=(32,), scaling_steps=1,
                                    agent_overrides={k: v for k, v in TINY.items() if k != "num_samples"}))
    (row,) = res["agents"]
    assert (row["agent"], row["preset"], row["horizon"], row["num_samples"]) == ("qc", "quick", 5, 32)
    assert row["updates_per_s"] > 0 and row["params"] > 0
    h, n = res["horizon_scaling"], res["num_samples_scaling"]
    assert [r["horizon"] for r in h["rows"]] == [5] and [r["num_samples"] for r in n["rows"]] == [32]
    assert h["rows"][0]["relative_cost"] == 1.0 and (h["agent"], h["field"]) == ("qc", "horizon")
    # h=5 and N=32 are the agent row's config: measured once, reused (one compile for the whole test)
    assert h["rows"][0]["step_ms"] == n["rows"][0]["step_ms"] == row["step_ms"]


@pytest.mark.slow
def test_seeds_suite_reports_aggregate_rate_and_ratio():
    from qchunk.bench.seeds import SeedsSettings, run_seeds

    # S=2 only (each S is one compile; the other seeds tests reuse this one)
    res = run_seeds(SeedsSettings(seeds=(2,), steps=1, rounds=1, modes=("map",), agent_overrides=TINY))
    (r2,) = res["rows"]
    assert r2["seeds"] == 2 and r2["mode"] == "map" and r2["updates_per_s"] > 0 and r2["metrics_finite"]
    assert res["auto_mode"] == "map"  # the CPU backend
    assert math.isclose(r2["updates_per_s"], 2 * r2["per_seed_updates_per_s"])
    assert r2["ratio_to_1"] is None  # no S=1 row to compare with


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["vmap", "map"])
def test_vmapped_seed_k_follows_the_single_agent_of_seed_k(mode, agent="qc-fql"):
    from qchunk.bench.seeds import SeedsSettings, seed_kernel, stacked_inputs, unstack_agent, vmapped_update

    settings = SeedsSettings(agent=agent, seed=3, agent_overrides=TINY)  # same shapes as the suite test: one compile
    stacked, batches = stacked_inputs(settings, 2)
    kernel = vmapped_update if mode == "vmap" else seed_kernel(2, "map")
    for _ in range(3):
        stacked, info = kernel(stacked, batches)
    assert all(v.shape == (2,) for v in info.values())
    for k in range(2):
        single, _ = stacked_inputs(SeedsSettings(agent=agent, seed=3 + k, agent_overrides=TINY), 1)
        single = unstack_agent(single, 0)
        batch = {key: v[k] for key, v in batches.items()}
        for _ in range(3):
            single, _ = single.update(batch)
        mine = unstack_agent(stacked, k)
        assert int(mine.step) == int(single.step) == 3
        for a, b in zip(jax.tree_util.tree_leaves(mine.params), jax.tree_util.tree_leaves(single.params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    # different seeds really are different agents
    a0, a1 = (jax.tree_util.tree_leaves(unstack_agent(stacked, k).params)[0] for k in range(2))
    assert not np.allclose(np.asarray(a0), np.asarray(a1))


@pytest.mark.slow
def test_eval_suite_compares_serial_per_step_with_batched():
    from qchunk.bench.eval_speed import EvalSpeedSettings, run_eval_speed

    res = run_eval_speed(EvalSpeedSettings(episodes=3, envs=2, episode_length=7, workers=2, serial_per_chunk=True,
                                           agent_overrides=TINY))
    modes = res["modes"]
    assert set(modes) == {"serial_per_step", "serial_per_chunk", "batched_parallel"}
    assert all(m["env_steps"] == 21 and m["seconds"] > 0 and m["episodes_per_s"] > 0 for m in modes.values())
    assert modes["serial_per_step"]["policy_queries"] == 21  # every step of the three episodes
    assert modes["serial_per_chunk"]["policy_queries"] == 3 * math.ceil(7 / 5)  # once per chunk, per episode
    assert modes["batched_parallel"]["policy_queries"] == 2 * math.ceil(7 / 5)  # once per chunk for each wave
    # the trainer's layout: 2 envs open, one in this process and one in a worker; its memory is reported
    assert res["envs"] == 2 and res["envs_per_process"] == [1, 1] and res["workers"] == 2
    if os.path.exists("/proc/self/status"):
        assert res["peak_rss_mb"] == modes["batched_parallel"]["peak_rss_mb"] > modes["serial_per_step"]["peak_rss_mb"]
    assert res["eval_speedup"] == pytest.approx(modes["serial_per_step"]["seconds"]
                                                / modes["batched_parallel"]["seconds"], rel=1e-9)
    assert res["pool_startup_s"] > 0 and res["make_env_s"] > 0 and res["other_agents"] == []


@pytest.mark.slow
def test_data_suite_loads_samples_and_measures_memory(tmp_path, tiny_ogbench_dir):
    from qchunk.bench.data_bench import DataSettings, run_data

    cache = tmp_path / "puzzle-3x3-play-v0-3x201-seed0"  # the cache layout: no generation needed
    shutil.copytree(tiny_ogbench_dir, cache)
    res = run_data(DataSettings(episodes=3, episode_steps=201, horizons=(1, 5), sample_batches=3,
                                capacities=(4000,), buffer_batches=2), tmp_path)
    assert res["load"]["transitions"] == 600 and res["load"]["generated_s"] is None
    assert [r["horizon"] for r in res["sampling"]] == [1, 5, 5] and all(r["batches_per_s"] > 0 for r in res["sampling"])
    (mem,) = res["memory"]
    assert mem["capacity"] == 4000
    assert mem["expected_mb"] == pytest.approx(4000 * 4 * (37 + 37 + 5 + 3) / 2**20)
    if os.path.exists("/proc/self/status"):
        assert mem["peak_rss_mb"] >= mem["expected_mb"] * 0.9


def test_e2e_time_share_from_hand_made_logs():
    from qchunk.bench.e2e import time_share

    train = [  # offline: 0.01 s/step, 20% sampling; online before updates: 0.004 s/step; after: 10% sampling
        {"phase": "offline", "steps_per_s": "100", "sample_frac": "0.2", "env_steps": "0"},
        {"phase": "offline", "steps_per_s": "100", "sample_frac": "0.2", "env_steps": "0"},
        {"phase": "online", "steps_per_s": "250", "sample_frac": "0", "env_steps": "10"},
        {"phase": "online", "steps_per_s": "50", "sample_frac": "0.1", "env_steps": "20"},
    ]
    out = time_share(train, [{"eval_seconds": "1.5"}], wall_s=10.0, offline_steps=100, online_steps=20,
                     online_updates=10, start_training=10)
    sec = out["seconds"]
    assert sec["update"] == pytest.approx(110 * 0.008)
    assert sec["sampling"] == pytest.approx(100 * 0.002 + 10 * 0.002)
    assert sec["env"] == pytest.approx(20 * 0.004) and sec["eval"] == 1.5
    assert sum(sec.values()) == pytest.approx(10.0) and sum(out["share"].values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_main_runs_a_suite_writes_its_document_and_summary(tmp_path, monkeypatch, capsys):
    from qchunk.bench import suites
    from qchunk.bench.results import read_documents
    from qchunk.bench.seeds import SeedsSettings, run_seeds

    monkeypatch.setitem(suites.RUNNERS, "seeds",
                        lambda args, quick: run_seeds(SeedsSettings(seeds=(2,), steps=1, agent_overrides=TINY)))
    assert main(BenchArgs(suite="seeds", quick=True, out_dir=tmp_path)) == 0
    docs = read_documents(tmp_path)
    doc = docs["seeds"]
    assert (doc["suite"], doc["sizes"]) == ("seeds", "quick") and doc["wall_s"] > 0
    env = doc["environment"]
    for key in ("backend", "device", "cpu_count", "jax", "numpy", "python", "qchunk", "load_avg_1m_before"):
        assert key in env, key
    assert env["backend"] == jax.default_backend()
    assert doc["results"]["rows"][0]["seeds"] == 2
    printed = capsys.readouterr().out
    assert "### seeds" in printed and str(tmp_path / "seeds.json") in printed


# ---------------------------------------------------------------------- the serial evaluation baseline
class _Chunker:
    """A deterministic controller returning (1, h, 5) chunks; counts calls."""

    def __init__(self, h):
        self.h, self.calls = h, 0

    def __call__(self, obs):
        assert obs.shape[0] == 1
        self.calls += 1
        return np.tanh(obs[:, :5])[:, None, :].repeat(self.h, axis=1).astype(np.float32)


@pytest.mark.slow
def test_serial_evaluation_queries_every_step_or_every_chunk():
    from qchunk.envs import make_env
    from qchunk.evaluation import EnvPool, evaluation_seeds, run_episodes, run_episodes_serial
    from qchunk.tasks import get_task

    seeds = evaluation_seeds(0, 0, 2)
    env = make_env(get_task(TINY_TASK), sparse=False, episode_length=12)
    try:
        per_step = run_episodes_serial(_Chunker(5), env, seeds, per_step=True)
        per_chunk = run_episodes_serial(_Chunker(5), env, seeds, per_step=False)
    finally:
        env.close()
    assert per_step.policy_queries == 24 and per_chunk.policy_queries == 2 * math.ceil(12 / 5)
    assert per_step.episode_length == per_chunk.episode_length == 12 and per_step.episodes == 2
    # open-loop, one env at a time, is the same behaviour as the batched evaluation of the same seeds
    with EnvPool(get_task(TINY_TASK), sparse=False, n=2, workers=1, episode_length=12) as pool:
        batched = run_episodes(lambda obs: np.tanh(obs[:, :5])[:, None, :].repeat(5, axis=1), pool, seeds)
    assert (batched.success, batched.episode_return) == (per_chunk.success, per_chunk.episode_return)
    # querying every step (the authors' style) still plays the queued chunk open-loop: the same episodes
    assert (per_step.success, per_step.episode_return) == (per_chunk.success, per_chunk.episode_return)
    with pytest.raises(QchunkError):
        run_episodes_serial(_Chunker(5), None, [])


def test_worker_thread_environment_is_set_while_spawning_and_restored():
    from qchunk.evaluation.pool import WORKER_THREAD_ENV, _environ

    before = dict(os.environ)
    with _environ(WORKER_THREAD_ENV):
        assert all(os.environ[k] == "1" for k in WORKER_THREAD_ENV)
    assert dict(os.environ) == before


def test_markdown_summary_renders_every_suite():
    from qchunk.bench.results import markdown_summary

    env = {"backend": "cpu", "cpu": "AMD EPYC", "cpu_count": 2, "jax": "0.10.2", "load_avg_1m": 1.0,
           "load_avg_1m_before": 0.5}
    agent_row = {"agent": "qc", "preset": "quick", "horizon": 5, "num_samples": 32, "updates_per_s": 9.1,
                 "compile_s": 4.0, "act_ms": 1.1, "params": 255003, "step_ms": 110.0}
    mode = {"seconds": 10.0, "episodes_per_s": 5.0, "env_steps_per_s": 500.0, "policy_queries": 100, "policy_s": 0.1,
            "peak_rss_mb": 1712.0}
    results = {
        "update": {"agents": [agent_row], "horizon_scaling": {"agent": "qc", "preset": "quick", "rows": [agent_row]},
                   "num_samples_scaling": None},
        "eval": {"episodes": 50, "task": TINY_TASK, "agent": "qc-fql", "preset": "quick", "workers": 2,
                 "modes": {"serial_per_step": mode, "batched_parallel": mode}, "eval_speedup": 1.0,
                 "pool_startup_s": 30.0, "eval_speedup_with_startup": 0.5, "other_agents": []},
        "data": {"load": {"transitions": 100, "file_mb": 1.0, "read_npz_s": 0.1, "load_ogbench_s": 1.0},
                 "sampling": [{"source": "dataset", "horizon": 5, "batches_per_s": 100.0, "ms_per_batch": 10.0}],
                 "memory": [{"capacity": 1000, "expected_mb": 0.3, "peak_rss_mb": 0.4, "fill_s": 0.1,
                             "batches_per_s": 10.0}]},
        "seeds": {"agent": "qc-fql", "preset": "quick",
                  "rows": [{"seeds": 1, "updates_per_s": 50.0, "ratio_to_1": 1.0, "compile_s": 4.0}]},
        "e2e": {"agent": "qc-fql", "env": TINY_TASK, "offline_steps": 20000, "online_steps": 20000, "evaluations": 4,
                "eval_episodes": 50, "wall_s": 600.0, "offline_updates_per_s": 60.0, "online_steps_per_s": 80.0,
                "time_share": {"update": 0.5, "sampling": 0.1, "env": 0.2, "eval": 0.1, "other": 0.1}},
    }
    docs = {k: {"suite": k, "sizes": "quick", "created": "now", "environment": env, "results": v}
            for k, v in results.items()}
    text = markdown_summary(docs)
    for heading in ("### update", "### eval", "### data", "### seeds", "### e2e"):
        assert heading in text, heading
    assert "| qc | quick | 5 | 32 | 9.1 |" in text and "**1x**" in text and "update 50%" in text
    assert "| 0.1 | 1.71e+03 |" in text  # the eval modes' peak memory
    assert markdown_summary({}) == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["--suite", "loop", "--quick", "--agent", "nope"], "error: unknown agent 'nope'; choose one of: qc, "),
    (["--suite", "seeds", "--quick", "--seed", "-3"], "error: --seed must be >= 0, got -3"),
    (["--agent", "qc", "--steps", "0"], "error: --steps and --act-repeats must be >= 1, got 0 and 20"),
])
def test_bad_names_and_numbers_are_one_line_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from qchunk.cli import main as cli_main

    assert cli_main(["bench", *argv, "--out-dir", str(tmp_path / "out"), "--dataset-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert list(tmp_path.iterdir()) == []  # no dataset generated, no results written
