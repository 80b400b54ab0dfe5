"""DSRL's fidelity fixtures (tools/fidelity, the QAM repo's agents/dsrl.py): the parameter mapping of
qchunk.fidelity.dsrl_replay, and what the recordings must contain for the switches to be visible. The replay
itself is tests/test_fidelity.py's, over every fixture."""

from __future__ import annotations

import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.fidelity import load_fixture
from qchunk.fidelity.dsrl_replay import dsrl_config, dsrl_params, dsrl_targets
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import relative_error
from qchunk.fidelity.transplant import check_same_structure, leaf_paths

DSRL_FIXTURES = [p for p in fixture_paths() if p.stem == "dsrl" or p.stem.startswith("dsrl-")]


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def test_the_mapping_covers_every_leaf_and_the_latent_actor_computes_the_authors_tanh_normal():
    fixture = load_fixture(FIXTURE_DIR / "dsrl.npz")
    config = dsrl_config(fixture.config, fixture.meta["horizon"])
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params, targets = dsrl_params(authors), dsrl_targets(authors, config)
    check_same_structure(params, agent.params, "params")
    check_same_structure(targets, agent.target_params, "targets")
    # every number of the authors' trees is mapped, each exactly once
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(targets, "t/")}.values())
    total = sum(int(np.prod(s)) for s in leaf_paths(authors).values())
    assert mapped == total

    # the authors' TanhNormal: a GELU MLP with the activation after its last layer, two heads, log_std clipped
    obs = fixture.batch()["observations"].astype(np.float64)
    actor = authors["modules_actor"]
    trunk = actor["MLP_0"]
    x = obs
    for i in range(len(trunk)):
        x = _gelu(x @ trunk[f"Dense_{i}"]["kernel"] + trunk[f"Dense_{i}"]["bias"])
    want_mean = x @ actor["OutputDenseMean"]["kernel"] + actor["OutputDenseMean"]["bias"]
    want_log_std = np.clip(x @ actor["OutputDenseLogStd"]["kernel"] + actor["OutputDenseLogStd"]["bias"], -20, 2)
    mean, log_std = agent.networks.actor.apply({"params": params["actor"]}, obs.astype(np.float32))
    assert relative_error(mean, want_mean) < 1e-5
    assert relative_error(log_std, want_log_std) < 1e-5


def test_every_dsrl_switch_is_recorded_with_targets_apart_from_the_online_networks():
    names = {p.stem for p in DSRL_FIXTURES}
    assert {"dsrl", "dsrl-online-latent", "dsrl-noise-scale", "dsrl-best-of-4", "dsrl-rho-0", "dsrl-first-action",
            "dsrl-actor-layer-norm", "dsrl-entropy-1", "dsrl-h1"} <= names
    for path in DSRL_FIXTURES:
        params = load_fixture(path).tree("params")
        for target, online in (("modules_target_critic", "modules_critic"),
                               ("modules_target_actor_bc_flow", "modules_actor_bc_flow")):
            gap = relative_error(params[target], params[online])
            # two warm-up updates move each online network by Adam steps of ~lr, 100x float32 rounding
            assert gap > 1e-4, f"{path.stem}: {target} equals {online}: a target/online swap would go unnoticed"


@pytest.mark.parametrize(("case", "field", "value"), [
    ("dsrl-online-latent", "latent_flow", "online"), ("dsrl-noise-scale", "noise_scale", 0.6),
    ("dsrl-best-of-4", "num_samples", 4), ("dsrl-rho-0", "rho", 0.0), ("dsrl-first-action", "chunked", False),
    ("dsrl-actor-layer-norm", "actor_layer_norm", True), ("dsrl-entropy-1", "target_entropy_per_dim", -1.0),
    ("dsrl-h1", "horizon", 1)])
def test_the_config_mapping_reads_each_switch(case, field, value):
    fixture = load_fixture(FIXTURE_DIR / f"{case}.npz")
    assert getattr(dsrl_config(fixture.config, fixture.meta["horizon"]), field) == value
