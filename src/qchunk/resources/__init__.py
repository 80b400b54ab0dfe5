"""Data files shipped with qchunk (read with ``importlib.resources``).

* ``paper_curves.json``: the published learning curves of the Q-chunking paper (success rate vs steps with
  95% bootstrap CIs, per OGBench task, per domain and for robomimic), used by ``qchunk plot --reference paper``.
* ``qam_curves.json``: the per-seed learning curves released with the QAM paper (Li and Levine, arXiv
  2601.14234): 17 methods on 50 OGBench tasks, their 10 domains and all of them, 12 seeds, success every 50K
  of 1M offline + 0.5M online steps (its ``source`` field says more), used by ``qchunk plot --reference qam``
  and the QAM table of ``qchunk report``.
"""
