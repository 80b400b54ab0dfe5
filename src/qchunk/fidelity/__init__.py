"""Fidelity to the authors' code, proven update by update.

``tools/fidelity/record.py`` runs the authors' agents (github:ColinQiyangLi/qc and github:ColinQiyangLi/qam,
in an environment of their own) for one update at small sizes and writes what they computed as numbers only:
initial parameters, the batch, every random draw in call order, the losses and logged metrics, the gradient of
every parameter, the parameters after the update and the actions of ``sample_actions``
(``tests/fixtures/fidelity/*.npz``). This package replays each fixture in qchunk without the authors' code:

* :mod:`~qchunk.fidelity.fixture` reads a fixture;
* :mod:`~qchunk.fidelity.transplant` maps the authors' parameter trees onto qchunk's;
* :mod:`~qchunk.fidelity.replay` rebuilds the agent, feeds the recorded draws to its ``loss_from_draws`` and
  ``act``, and measures the largest relative difference per quantity (:class:`~qchunk.fidelity.replay.Check`);
* :mod:`~qchunk.fidelity.report` writes the table of ``docs/fidelity.md``
  (``python -m qchunk.fidelity.report``).
"""

from qchunk.fidelity.fixture import Fixture, load_fixture
from qchunk.fidelity.replay import Check, replay

__all__ = ["Check", "Fixture", "load_fixture", "replay"]
