"""The update benchmark: result keys, JSON output, summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qchunk.bench.update import BenchArgs, main, run_bench, synthetic_batch
from qchunk.errors import QchunkError


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

    from qchunk.bench import update as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BenchArgs")
    documented = {
        node.target.id
        for node, nxt in zip(cls.body, cls.body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
    }
    assert documented == set(BenchArgs.__dataclass_fields__) >= {"agent", "preset", "domain", "steps", "json"}
    defaults = BenchArgs()
    assert (defaults.agent, defaults.preset, defaults.domain, defaults.json) == ("qc", "paper", "cube-double", None)
