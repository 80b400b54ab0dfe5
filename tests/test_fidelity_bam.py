"""BAM's fidelity fixtures (tools/fidelity, the QAM repo's agents/bam.py): each switch recorded, and each deliberate
change to qchunk's BAM update fails the comparison. The replay itself is tests/test_fidelity.py's, over every
fixture."""

from __future__ import annotations

import pytest

from qchunk.fidelity import load_fixture, replay
from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths
from qchunk.fidelity.replay import failures

BAM_CASES = {"bam", "bam-residual", "bam-no-target-actor", "bam-best-of-4", "bam-bc-acting", "bam-rho-0"}

MUTATIONS = {
    "the online BC field in the chain": {"target_actor": False},
    "rho * std dropped (TD target and the actor's Q)": {"rho": 0.0},
    "no gradient clipping": {"max_grad_norm": 0.0},
    "another inverse temperature": {"inv_temp": 1.1},
}


def test_every_switch_is_recorded():
    assert BAM_CASES <= {p.stem for p in fixture_paths()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_changed_computation_fails_the_comparison(name):
    fixture = load_fixture(FIXTURE_DIR / "bam.npz")
    bad = failures(replay(fixture, MUTATIONS[name]))
    assert bad, f"{name} went unnoticed"
