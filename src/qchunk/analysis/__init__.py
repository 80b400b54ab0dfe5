"""Analyses of training runs: exploration statistics (temporal coherence, gripper contacts, trajectory logs)
and end-effector trajectory plots (``qchunk analyze trajectories``). The positions and contacts come from
the env's ``info`` (:class:`qchunk.envs.probes.ExplorationProbes`).

Importing this package loads only numpy; plotting imports matplotlib when called.
"""

from qchunk.analysis.coherence import (
    CoherenceTracker,
    TrajectoryLog,
    coherence,
    load_online_states,
    log_coherence,
)

__all__ = ["CoherenceTracker", "TrajectoryLog", "coherence", "load_online_states", "log_coherence"]
