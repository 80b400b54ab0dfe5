"""qchunk's updates against the authors' code, from fixtures the authors' code recorded (tools/fidelity).

Every fixture in tests/fixtures/fidelity is one update of one of the authors' agents at small sizes: the test
replays it in qchunk (transplanted parameters, the recorded random draws) and requires every loss term, logged
metric, gradient, updated parameter and action to match within float32 rounding (qchunk.fidelity.replay.TOLERANCE).
No authors' code is imported here; the numbers are facts it computed.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.fixture import fixture_paths
from qchunk.fidelity.replay import failures, relative_error
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, mlp_layers, vector_field

FIXTURES = fixture_paths()
FAST = {"qam", "qam-f", "qam-e", "fedit", "dsrl", "bam", "cgql", "cgql-m", "cgql-l", "acfql-qc", "acfql-qc-fql",
        "qam-fql", "rlpd-ac", "qc-rlpd", "qam-rlpd-ac", "rebrac", "fbrac", "ifql", "fawac", "qsm", "dac"}
"""The default case of each authors' agent: in the fast tier; every other switch runs in the full suite."""


def test_fixtures_exist_and_are_small():
    assert FIXTURES, "no fidelity fixture recorded"
    for path in FIXTURES:
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", [p if p.stem in FAST else pytest.param(p, marks=pytest.mark.slow) for p in FIXTURES],
                         ids=[p.stem for p in FIXTURES])
def test_update_equals_the_authors(path):
    fixture = load_fixture(path)
    checks = replay(fixture)
    kinds = {c.kind for c in checks}
    assert {"loss", "metric", "gradient", "parameters after the update", "actions"} <= kinds
    # every metric the authors' update logged has been compared
    compared = {c.name for c in checks if c.kind == "metric"}
    assert set(fixture.flat("info")) <= compared
    bad = failures(checks)
    assert not bad, "\n".join(f"{c.kind} {c.name}: {c.error:.3g} > {c.tolerance:g}" for c in bad)


MUTATIONS = {
    "adjoint time offset moved back (exact scheme)": {"adjoint": "exact"},
    "rho * std dropped from the TD target": {"rho": 0.0},
    "flow loss weighted by valid per step": {"bc_weighting": "step"},
    "online critic starts the adjoint": {"target_critic_grad": False},
}


@pytest.mark.slow  # mutation checks: in the full suite, as for every other method
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(name):
    """Mutation check: each deliberate change to QAM's update makes some comparison fail."""
    fixture = load_fixture(next(p for p in FIXTURES if p.stem == "qam-inv-temp-1"))  # equal: the test above
    bad = failures(replay(fixture, MUTATIONS[name]))
    assert bad, f"{name} went unnoticed"


QAM_FIXTURE = next((p for p in FIXTURES if p.stem == "qam"), FIXTURES[0])
"""The QAM fixture (h=3: its windows cross the episode end and the terminal)."""


def test_the_batch_crosses_an_episode_end_and_a_terminal():
    batch = load_fixture(QAM_FIXTURE).batch()
    assert (batch["valid"][:, -1] == 0).any() and (batch["valid"][:, -1] == 1).any()
    assert (batch["masks"][:, -1] == 0).any() and (batch["masks"][:, -1] == 1).any()


def test_transplant_is_a_bijection_with_equal_forward_passes():
    """The parameter mapping covers every leaf of qchunk's networks exactly once, and the transplanted critic
    and flow compute what a plain numpy MLP on the authors' weights computes."""
    from qchunk.networks import CriticEnsemble, FlowVelocity

    fixture = load_fixture(QAM_FIXTURE)
    authors = fixture.tree("params")
    critic_tree = critic_ensemble(authors["modules_critic"])
    flow_tree = vector_field(authors["modules_actor_slow"])
    obs = fixture.batch()["observations"]
    chunk = fixture.batch()["actions"].reshape(obs.shape[0], -1)
    k, width = critic_tree["critics"]["dense_0"]["kernel"].shape[0], chunk.shape[1]
    critic = CriticEnsemble((32, 32), k, True)
    flow = FlowVelocity((32, 32), width, False)
    check_same_structure(critic_tree, critic.init(jax.random.PRNGKey(0), obs, chunk)["params"], "critic")
    times = np.full((obs.shape[0], 1), 0.3, np.float32)
    check_same_structure(flow_tree, flow.init(jax.random.PRNGKey(0), obs, chunk, times)["params"], "flow")

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    def layer_norm(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-6) * p["scale"] + p["bias"]

    def numpy_mlp(layers, x, norm):
        n = len([k for k in layers if k.startswith("Dense")])
        for i in range(n):
            x = x @ layers[f"Dense_{i}"]["kernel"] + layers[f"Dense_{i}"]["bias"]
            if i < n - 1:
                x = gelu(x)
                x = layer_norm(x, layers[f"LayerNorm_{i}"]) if norm else x
        return x

    value = authors["modules_critic"]["value_net"]
    want_q = np.stack([numpy_mlp(jax.tree_util.tree_map(lambda a, j=j: a[j], value), np.concatenate([obs, chunk], -1),
                                 True)[:, 0] for j in range(k)])
    got_q = critic.apply({"params": critic_tree}, obs, chunk)
    assert relative_error(got_q, want_q) < 1e-5
    want_v = numpy_mlp(authors["modules_actor_slow"]["mlp"], np.concatenate([obs, chunk, times], -1), False)
    assert relative_error(flow.apply({"params": flow_tree}, obs, chunk, times), want_v) < 1e-5
    with pytest.raises(Exception, match="unexpected MLP entry"):
        mlp_layers({"Dense_0": {}, "Conv_0": {}})


@pytest.mark.parametrize("path", [QAM_FIXTURE], ids=["qam"])
def test_chunk_sampler_equals_the_authors_sample_sequence(path):
    """qchunk's chunk sampler at the recorded window starts reproduces the batch the authors' sampler drew from
    the same transitions (an episode end by time-out at 11, a termination at 25): rewards, masks and valid
    everywhere; actions and next states wherever the step is inside the episode (past its end the two fill
    differently, and every loss weights those steps out)."""
    from qchunk.data.dataset import Dataset

    fixture = load_fixture(path)
    raw, want = fixture.flat("dataset"), fixture.batch()
    data = Dataset.from_dict(raw)
    got = data.chunks_at(fixture.arrays["sample/idxs"], fixture.meta["horizon"], fixture.config["discount"])
    for key in ("observations", "rewards", "masks", "valid"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)
    valid = want["valid"].astype(bool)
    np.testing.assert_array_equal(got["actions"][valid], want["actions"][valid])
    np.testing.assert_array_equal(got["next_observations"][valid], want["next_observations"][valid])
    assert not valid.all() and (want["masks"] == 0).any()


def test_report_refuses_a_missing_fixture_directory_or_page_in_one_line(tmp_path, capsys):
    from qchunk.fidelity.report import main

    page = tmp_path / "page.md"
    page.write_text("no markers\n")
    assert main(["--fixtures", str(tmp_path / "none"), "--doc", str(page)]) == 2
    assert main(["--doc", str(tmp_path / "missing.md")]) == 2
    assert main(["--doc", str(page)]) == 2  # no table markers
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert page.read_text() == "no markers\n"  # nothing written


@pytest.mark.parametrize("tool, args", [
    ("record.py", ["--qam", "{bad}", "--case", "qam"]),
    ("bench_authors.py", ["--qam", "{bad}", "--agent", "qam"]),
    ("update_ratios.py", ["--qam", "{bad}", "--authors-python", "{bad}", "--agent", "qam"]),
])
def test_the_authors_side_tools_refuse_a_path_that_is_no_checkout_in_one_line(tmp_path, tool, args):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "tools" / "fidelity" / tool
    argv = [a.replace("{bad}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tool", ["bench_authors.py", "update_ratios.py"])
def test_the_timing_tools_refuse_to_write_over_a_file_qchunk_did_not_write(tmp_path, tool):
    import subprocess
    import sys

    checkout = tmp_path / "qam"
    (checkout / "agents").mkdir(parents=True)
    (checkout / "experiments").mkdir()
    (checkout / "experiments" / "reproduce.py").write_text("")
    theirs = tmp_path / "results.json"
    theirs.write_text('{"mine": 1}')
    script = Path(__file__).resolve().parents[1] / "tools" / "fidelity" / tool
    extra = ["--authors-python", sys.executable] if tool == "update_ratios.py" else []
    proc = subprocess.run([sys.executable, str(script), "--qam", str(checkout), *extra, "--agent", "qam", "--json",
                           str(theirs)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "qchunk did not write it" in proc.stderr
    assert theirs.read_text() == '{"mine": 1}'
