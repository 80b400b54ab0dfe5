"""The flow family's fidelity replayer (qchunk.fidelity.flow_replay): the presets are the authors' configs, and a
setting of theirs that qchunk lacks is refused instead of replayed wrongly. The update-by-update comparison itself
is tests/test_fidelity.py, over every fixture."""

from __future__ import annotations

import pytest

from qchunk.agents import agent_config
from qchunk.errors import QchunkError
from qchunk.fidelity import load_fixture
from qchunk.fidelity.fixture import FIXTURE_DIR
from qchunk.fidelity.flow_replay import acfql_config, qam_fql_config

COMPARED = ("discount", "tau", "lr", "critic_layer_norm", "actor_layer_norm", "num_critics", "q_agg", "rho",
            "flow_steps", "bc_weighting", "normalize_q_loss", "policy", "chunked")


def authors_config(case: str) -> dict:
    return dict(load_fixture(FIXTURE_DIR / f"{case}.npz").config)


@pytest.mark.parametrize(("case", "name", "preset", "to_config"), [
    ("acfql-qc-fql", "qc-fql", "paper", acfql_config),
    ("acfql-qc", "qc", "paper", acfql_config),
    ("acfql-fql-n", "fql-n", "paper", acfql_config),
    ("qam-fql", "qc-fql", "qam", qam_fql_config),
])
def test_the_preset_is_the_authors_config(case, name, preset, to_config):
    """Every setting the recorded (default) authors' config shares with qchunk's preset has the preset's value; the
    fixtures differ from the presets only in sizes, h and the per-domain alpha / N."""
    ours = agent_config(name, preset, "cube-double")
    theirs = to_config(authors_config(case), ours.horizon)
    assert {f: getattr(theirs, f) for f in COMPARED} == {f: getattr(ours, f) for f in COMPARED}


@pytest.mark.parametrize("setting", [{"weight_decay": 0.1}, {"encoder": "impala_small"},
                                     {"use_fourier_features": True}, {"actor_type": "sac"}])
def test_acfql_settings_qchunk_lacks_are_refused(setting):
    with pytest.raises(QchunkError):
        acfql_config({**authors_config("acfql-qc-fql"), **setting}, 3)


def test_qam_fql_best_of_several_one_step_samples_is_refused():
    with pytest.raises(QchunkError, match="best_of_n"):
        qam_fql_config({**authors_config("qam-fql"), "best_of_n": 4}, 3)
