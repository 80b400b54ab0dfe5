"""FAWAC's fidelity fixtures (tools/fidelity, the QAM repo's agents/fawac.py): the parameter mapping of
qchunk.fidelity.fawac_replay, the recorded switches, and mutation checks: each deliberate change to FAWAC's update
makes the comparison fail. The replay itself is tests/test_fidelity.py's."""

from __future__ import annotations

import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.fawac_replay import fawac_config, fawac_params, fawac_targets
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import failures, relative_error
from qchunk.fidelity.transplant import check_same_structure, leaf_paths

FAWAC_FIXTURES = [p for p in fixture_paths() if p.stem == "fawac" or p.stem.startswith("fawac-")]


def test_the_mapping_covers_every_leaf():
    fixture = load_fixture(FIXTURE_DIR / "fawac.npz")
    config = fawac_config(fixture.config, fixture.meta["horizon"])
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params, targets = fawac_params(authors), fawac_targets(authors)
    check_same_structure(params, agent.params, "params")
    check_same_structure(targets, agent.target_params, "targets")
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(targets, "t/")}.values())
    assert mapped == sum(int(np.prod(s)) for s in leaf_paths(authors).values())


def test_every_fawac_switch_is_recorded_with_targets_apart_from_the_online_critic():
    names = {p.stem for p in FAWAC_FIXTURES}
    assert {"fawac", "fawac-inv-temp-100", "fawac-rho-0", "fawac-first-action", "fawac-h1"} <= names
    for path in FAWAC_FIXTURES:
        params = load_fixture(path).tree("params")
        assert relative_error(params["modules_target_critic"], params["modules_critic"]) > 1e-5


MUTATIONS = {
    "no clip of the advantage weights": ("fawac-inv-temp-100", {"max_weight": 1e9}),
    "another inverse temperature": ("fawac", {"inv_temp": 5.0}),
    "rho * std dropped from the TD target": ("fawac", {"rho": 0.0}),
    "flow loss weighted by valid per step": ("fawac", {"bc_weighting": "step"}),
}


@pytest.mark.slow  # mutation checks: in the full suite, as for every other method
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(name):
    case, change = MUTATIONS[name]
    fixture = load_fixture(FIXTURE_DIR / f"{case}.npz")  # equal unchanged: tests/test_fidelity.py
    bad = failures(replay(fixture, change))
    assert bad, f"{name} went unnoticed"
