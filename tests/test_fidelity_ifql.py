"""IFQL's fidelity fixtures (tools/fidelity, the QAM repo's agents/ifql.py): the parameter mapping of
qchunk.fidelity.ifql_replay (the value network against a numpy MLP), the recorded switches, and mutation checks:
each deliberate change to IFQL's update makes the comparison fail. The replay itself is tests/test_fidelity.py's."""

from __future__ import annotations

import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.ifql_replay import ifql_config, ifql_params, ifql_targets
from qchunk.fidelity.replay import failures, relative_error
from qchunk.fidelity.transplant import check_same_structure, leaf_paths

IFQL_FIXTURES = [p for p in fixture_paths() if p.stem == "ifql" or p.stem.startswith("ifql-")]


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x, scale, bias):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * scale + bias


def test_the_mapping_covers_every_leaf_and_the_value_computes_the_authors_mlp():
    fixture = load_fixture(FIXTURE_DIR / "ifql.npz")
    config = ifql_config(fixture.config, fixture.meta["horizon"])
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params, targets = ifql_params(authors), ifql_targets(authors)
    check_same_structure(params, agent.params, "params")
    check_same_structure(targets, agent.target_params, "targets")
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(targets, "t/")}.values())
    assert mapped == sum(int(np.prod(s)) for s in leaf_paths(authors).values())

    # the authors' Value (one member, no action): Dense -> GELU -> LayerNorm per hidden layer, a scalar head
    net = authors["modules_value"]["value_net"]
    x = fixture.batch()["observations"].astype(np.float64)
    layers = sum(1 for k in net if k.startswith("Dense_"))
    for i in range(layers):
        x = x @ net[f"Dense_{i}"]["kernel"] + net[f"Dense_{i}"]["bias"]
        if i + 1 < layers:
            x = _layer_norm(_gelu(x), net[f"LayerNorm_{i}"]["scale"], net[f"LayerNorm_{i}"]["bias"])
    got = agent.networks.value.apply({"params": params["value"]}, fixture.batch()["observations"])
    assert relative_error(got, x[:, 0]) < 1e-5


def test_every_ifql_switch_is_recorded_with_acting_state_by_state():
    assert {"ifql", "ifql-kappa-0.7", "ifql-rho-0", "ifql-first-action", "ifql-h1"} <= {p.stem for p in IFQL_FIXTURES}
    for path in IFQL_FIXTURES:
        fixture = load_fixture(path)
        params = fixture.tree("params")
        assert relative_error(params["modules_target_critic"], params["modules_critic"]) > 1e-5
        assert len(fixture.draws("act")) == fixture.meta["batch"]  # one sample_actions call per state


MUTATIONS = {
    "expectile 0.5 (the value regresses to the mean)": {"kappa": 0.5},
    "rho * std dropped from the value's target": {"rho": 0.0},
    "flow loss weighted by valid per step": {"bc_weighting": "step"},
    "candidates ranked by the ensemble mean": {"select_agg": "mean"},
}


@pytest.mark.slow  # mutation checks: in the full suite, as for every other method
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(name):
    fixture = load_fixture(FIXTURE_DIR / "ifql.npz")  # equal unchanged: tests/test_fidelity.py
    bad = failures(replay(fixture, MUTATIONS[name]))
    assert bad, f"{name} went unnoticed"
