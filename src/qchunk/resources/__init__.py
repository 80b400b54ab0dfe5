"""Data files shipped with qchunk (read with ``importlib.resources``).

* ``paper_curves.json``: the published learning curves of the Q-chunking paper (success rate vs steps with
  95% bootstrap CIs, per OGBench task, per domain and for robomimic), used by ``qchunk plot --reference paper``.
"""
