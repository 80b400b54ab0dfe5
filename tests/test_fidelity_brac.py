"""ReBRAC's and FBRAC's fidelity fixtures (tools/fidelity, the QAM repo's agents/rebrac.py and agents/fbrac.py): the
parameter mapping of
qchunk.fidelity.brac_replay, what the recordings must contain for the switches to be visible, and the mutation
checks. The replay itself is tests/test_fidelity.py's, over every fixture."""

from __future__ import annotations

import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.brac_replay import fbrac_config, fbrac_params, rebrac_config, rebrac_params, rebrac_targets
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import failures, relative_error
from qchunk.fidelity.transplant import check_same_structure, leaf_paths

REBRAC_FIXTURES = [p for p in fixture_paths() if p.stem == "rebrac" or p.stem.startswith("rebrac-")]
FBRAC_FIXTURES = [p for p in fixture_paths() if p.stem == "fbrac" or p.stem.startswith("fbrac-")]


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def test_the_mapping_covers_every_leaf_and_the_actor_computes_the_authors_mode():
    fixture = load_fixture(FIXTURE_DIR / "rebrac-actor-layer-norm.npz")
    config = rebrac_config(fixture.config, fixture.meta["horizon"])
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params, targets = rebrac_params(authors), rebrac_targets(authors)
    check_same_structure(params, agent.params, "params")
    check_same_structure(targets, agent.target_params, "targets")
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(targets, "t/")}.values())
    assert mapped == sum(int(np.prod(s)) for s in leaf_paths(authors).values())

    # the authors' Actor mode: a GELU MLP, LayerNorm after each activation (the last layer's too), tanh(mean_net)
    obs = fixture.batch()["observations"].astype(np.float64)
    actor = authors["modules_actor"]
    x = obs
    for i in range(len([k for k in actor["actor_net"] if k.startswith("Dense")])):
        x = _gelu(x @ actor["actor_net"][f"Dense_{i}"]["kernel"] + actor["actor_net"][f"Dense_{i}"]["bias"])
        norm = actor["actor_net"][f"LayerNorm_{i}"]
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6) * norm["scale"] + norm["bias"]
    want = np.tanh(x @ actor["mean_net"]["kernel"] + actor["mean_net"]["bias"])
    got = agent.networks.actor.apply({"params": params["actor"]}, obs.astype(np.float32))
    assert relative_error(got, want) < 1e-5


def test_every_switch_is_recorded_with_targets_apart_from_the_online_networks():
    names = {p.stem for p in REBRAC_FIXTURES}
    assert {"rebrac", "rebrac-no-target-step", "rebrac-noise-clip", "rebrac-noise-0", "rebrac-rho-0",
            "rebrac-first-action", "rebrac-h1", "rebrac-actor-layer-norm"} <= names
    for path in REBRAC_FIXTURES:
        fixture = load_fixture(path)
        params, new = fixture.tree("params"), fixture.tree("new_params")
        for target, online in (("modules_target_critic", "modules_critic"), ("modules_target_actor", "modules_actor")):
            assert relative_error(params[target], params[online]) > 1e-4, (path.stem, target)
            moved = relative_error(new[target], params[target])
            # update(full_update=False) leaves the targets exactly where they were
            assert (moved > 0) == fixture.meta["update_kwargs"]["full_update"], (path.stem, target, moved)
    # the clip of the target noise bites in its case (some |noise| * 0.5 > 0.3)
    noise = load_fixture(FIXTURE_DIR / "rebrac-noise-clip.npz").draws("update")[0]
    assert np.any(np.abs(noise) * 0.5 > 0.3)


def test_fbrac_mapping_covers_every_leaf_and_every_switch_is_recorded():
    fixture = load_fixture(FIXTURE_DIR / "fbrac.npz")
    config = fbrac_config(fixture.config, fixture.meta["horizon"])
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params = fbrac_params(authors)
    check_same_structure(params, agent.params, "params")
    target = {"critic": agent.target_params["critic"]}
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(target, "t/")}.values())
    assert mapped == sum(int(np.prod(s)) for s in leaf_paths(authors).values())
    names = {p.stem for p in FBRAC_FIXTURES}
    assert {"fbrac", "fbrac-best-of-4", "fbrac-rho-0", "fbrac-first-action", "fbrac-h1",
            "fbrac-actor-layer-norm"} <= names
    for path in FBRAC_FIXTURES:
        params = load_fixture(path).tree("params")
        assert relative_error(params["modules_target_critic"], params["modules_critic"]) > 1e-4, path.stem


MUTATIONS = {  # name: (fixture, config change)
    "targets moved on an update that keeps them": ("rebrac-no-target-step", {"target_every": 1}),
    "no BC penalty": ("rebrac", {"alpha_actor": 0.0}),
    "target noise clipped elsewhere": ("rebrac-noise-clip", {"actor_noise_clip": 0.5}),
    "rho * std dropped": ("rebrac", {"rho": 0.0}),
    "FBRAC: another alpha": ("fbrac", {"alpha": 2.0}),
    "FBRAC: flow loss weighted by valid per step": ("fbrac", {"bc_weighting": "step"}),
    "FBRAC: one Euler step fewer": ("fbrac", {"flow_steps": 9}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(name):
    case, change = MUTATIONS[name]
    fixture = load_fixture(FIXTURE_DIR / f"{case}.npz")  # equal unchanged: tests/test_fidelity.py
    assert failures(replay(fixture, change)), f"{name} went unnoticed"
