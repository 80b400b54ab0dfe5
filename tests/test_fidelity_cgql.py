"""CGQL's fidelity fixtures (tools/fidelity, the QAM repo's agents/cgql.py): each mode and switch recorded, and
each deliberate change to qchunk's CGQL update fails the comparison. The replay itself is tests/test_fidelity.py's,
over every fixture."""

from __future__ import annotations

import pytest

from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import failures

CGQL_CASES = {"cgql", "cgql-m", "cgql-l", "cgql-l-clipped", "cgql-online-guidance", "cgql-m-best-of-4", "cgql-bc",
              "cgql-rho-0"}

MUTATIONS = {
    ("cgql", "another inverse temperature"): {"inv_temp": 1.1},
    ("cgql", "another guidance coefficient"): {"guidance_coef": 0.11},
    ("cgql", "the online BC field in the guided sampler"): {"target_actor": False},
    ("cgql-m", "LinEx instead of the squared error"): {"mode": "linex"},
    ("cgql-l", "the exponential cut off lower"): {"isd_clip": 0.0},
    ("cgql-l", "gradient clipping"): {"max_grad_norm": 1e-3},
}


def test_every_switch_is_recorded():
    assert CGQL_CASES <= {p.stem for p in fixture_paths()}


@pytest.mark.slow
@pytest.mark.parametrize("case,name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(case, name):
    bad = failures(replay(load_fixture(FIXTURE_DIR / f"{case}.npz"), MUTATIONS[case, name]))
    assert bad, f"{name} went unnoticed"
