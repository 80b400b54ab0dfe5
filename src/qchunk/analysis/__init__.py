"""Analyses of training runs: exploration statistics (temporal coherence, gripper contacts, trajectory logs)
and end-effector trajectory plots (``qchunk analyze trajectories``).

Importing this package loads only numpy; plotting imports matplotlib when called.
"""

from qchunk.analysis.coherence import (
    CoherenceTracker,
    TrajectoryLog,
    coherence,
    end_effector_position,
    gripper_contact,
    load_online_states,
    log_coherence,
)

__all__ = ["CoherenceTracker", "TrajectoryLog", "coherence", "end_effector_position", "gripper_contact",
           "load_online_states", "log_coherence"]
