"""qchunk: sample-efficient offline-to-online reinforcement learning with action chunking (Q-chunking).

Public entry points live in the subpackages:

- :mod:`qchunk.data`   datasets, replay buffers and the chunk sampler, OGBench loading and generation.
- :mod:`qchunk.agents` the Q-chunking family (qc, qc-fql) and its baselines as presets of shared agents.
"""

__version__ = "0.1.0"
