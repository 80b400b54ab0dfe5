"""QSM's and DAC's fidelity fixtures (tools/fidelity, the QAM repo's agents/dcgql.py): the parameter mapping of
qchunk.fidelity.diffusion_replay, the recorded switches, and mutation checks (a changed computation must fail the
comparison). The replay itself is tests/test_fidelity.py's, over every fixture."""

from __future__ import annotations

import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.diffusion_replay import diffusion_config, diffusion_params, diffusion_targets
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import failures
from qchunk.fidelity.transplant import check_same_structure, leaf_paths

NAMES = {"qsm", "dac", "qsm-online-critic-grad", "dac-online-critic-grad", "qsm-no-clip", "dac-clip-both", "qsm-cosine",
         "dac-linear", "dac-steps-5", "qsm-rho-0", "qsm-first-action", "dac-h1", "qsm-actor-layer-norm"}


def test_every_switch_is_recorded_and_the_mapping_covers_every_leaf():
    assert NAMES <= {p.stem for p in fixture_paths()}
    fixture = load_fixture(FIXTURE_DIR / "qsm.npz")
    config = diffusion_config(fixture.config, fixture.meta["horizon"])
    assert (config.agent, config.actor_loss, config.clip_sampler_after) == ("qsm", "qsm", True)
    agent = create_agent(config, fixture.meta["obs_dim"], fixture.meta["action_dim"])
    authors = fixture.tree("params")
    params, targets = diffusion_params(authors), diffusion_targets(authors)
    check_same_structure(params, agent.params, "params")
    check_same_structure(targets, agent.target_params, "targets")
    mapped = sum(int(np.prod(s)) for s in {**leaf_paths(params, "p/"), **leaf_paths(targets, "t/")}.values())
    assert mapped == sum(int(np.prod(s)) for s in leaf_paths(authors).values())
    batch = fixture.batch()
    assert (batch["valid"][:, -1] == 0).any()  # a chunk past an episode end: the authors' ``** valid`` shows


MUTATIONS = {
    "qsm": {"the online critic's action-gradient": {"target_critic_grad": False},
            "no clip after each reverse step": {"clip_sampler_after": False},
            "another inverse temperature": {"inv_temp": 1.0}},
    "dac": {"the posterior mean without the clipped estimate": {"clip_sampler_before": False},
            "the cosine schedule": {"beta_schedule": "cosine"}},
}


@pytest.mark.slow
@pytest.mark.parametrize(("case", "name"), [(c, n) for c, ms in MUTATIONS.items() for n in sorted(ms)])
def test_a_changed_computation_fails_the_comparison(case, name):
    fixture = load_fixture(FIXTURE_DIR / f"{case}.npz")
    bad = failures(replay(fixture, MUTATIONS[case][name]))
    assert bad, f"{case}: {name} went unnoticed"
