"""qchunk: sample-efficient offline-to-online reinforcement learning with action chunking (Q-chunking).

Public entry points live in the subpackages:

- :mod:`qchunk.data`   datasets, replay buffers and the chunk sampler, OGBench loading and generation.
- :mod:`qchunk.agents` the Q-chunking family (qc, qc-fql) and its baselines as presets of shared agents.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

if _os.path.basename(getattr(_sys.modules.get("__main__"), "__file__", None) or "") == "qchunk":
    # the `qchunk` console script: SIGINT/SIGTERM are recorded from here on, not raised inside the imports
    # that follow (see qchunk.signals); only the interpreter's own start comes before this line
    from qchunk.signals import defer_signals as _defer_signals

    _defer_signals()
