"""``Exploration``: the online phase's exploration statistics (the paper's section 5.4).

The temporal-coherence window (``explore/*`` columns of train.csv) lives in the run state; with
``--save-online-states`` every online end-effector position is also kept in ``online_states.npz``.
"""

from __future__ import annotations

from pathlib import Path

from qchunk.analysis import CoherenceTracker, TrajectoryLog
from qchunk.training.collector import StepStats


class Exploration:
    """Feeds the env's probes (``info["ee_pos"]``, ``info["gripper_contact"]``) to the statistics.

    Args:
        tracker: the run state's coherence window.
        states_file: where the per-step trajectory goes (None: not kept).
    """

    def __init__(self, tracker: CoherenceTracker, states_file: Path | None):
        self.tracker, self.states_file = tracker, states_file
        self.trajectory = TrajectoryLog() if states_file is not None else None

    def restore(self, env_steps: int) -> None:
        """Reload the trajectory written so far, without the rows after the checkpoint (logged again)."""
        if self.trajectory is not None and self.states_file.is_file():
            self.trajectory = TrajectoryLog.load(self.states_file, before_step=env_steps)

    def observe(self, env_step: int, episode: int, stats: StepStats) -> None:
        """The state online step ``env_step`` acted on."""
        self.tracker.observe(env_step, stats.ee_pos, stats.episode_start, stats.gripper_contact)
        if self.trajectory is not None and stats.ee_pos is not None:
            self.trajectory.append(env_step, stats.ee_pos, episode, stats.gripper_contact)

    def save(self) -> None:
        if self.trajectory is not None:
            self.trajectory.save(self.states_file)
