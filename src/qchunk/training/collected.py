"""The transitions a finished (or interrupted) run collected online, for retraining on them.

The data-collection study trains offline on the offline dataset plus the online data another agent
collected (``TrainConfig.extra_data`` / ``qchunk train --extra-data RUN_DIR``); this module reads that data
back from the run's newest checkpoint.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from qchunk.data.dataset import TRANSITION_KEYS, Dataset, ReplayBuffer
from qchunk.errors import require
from qchunk.training.checkpoint import describe_pick
from qchunk.training.run_dir import RunDir


def collected_transitions(run_dir: str | os.PathLike, env: str | None = None,
                          sparse: bool | None = None) -> dict[str, np.ndarray]:
    """The online transitions stored in ``run_dir``'s newest checkpoint, oldest first, as the arrays of
    :data:`~qchunk.data.dataset.TRANSITION_KEYS`; the last one ends its episode (a cut if the run stopped
    mid-episode: its mask is unchanged).

    Args:
        run_dir: a training run directory (with ``config.json`` and ``checkpoints/``).
        env, sparse: when given, the run must have used the same task and reward transform.
    Raises:
        QchunkError: not a run, no online data, another task or reward, or a replay buffer smaller than the
            number of online steps (it overwrote collected transitions).
    """
    run = RunDir(run_dir)
    require(run.holds_run(), f"--extra-data {run.path} is not a qchunk run directory (no config.json)")
    train = run.read().train
    require(env is None or train.env == env, f"--extra-data {run.path} was collected on {train.env}, not {env}")
    require(sparse is None or train.sparse == sparse,
            f"--extra-data {run.path} used sparse={train.sparse}, this run sparse={sparse}")
    ckpt, skipped = run.checkpoints.pick()
    if ckpt is not None:
        print(f"--extra-data: reading {run.label()}: {describe_pick(ckpt, skipped)}", file=sys.stderr, flush=True)
    state = ckpt.buffer() if ckpt is not None else None
    require(state is not None, f"--extra-data {run.path} has no checkpoint with online data yet"
                               + (f" ({describe_pick(None, skipped)})" if skipped and ckpt is None else ""))
    meta = [int(x) for x in state["_meta"]]
    collected = int(ckpt.state["counters"]["env_steps"])
    skip = meta[3] if len(meta) > 3 else 0
    if skip:  # the offline prefix was left out: the stored rows are exactly the online ones
        rows = {k: state[k] for k in TRANSITION_KEYS}
    else:  # the newest env_steps rows are the online ones
        buffer = ReplayBuffer.from_state_dict(state)
        require(collected <= buffer.size, f"the replay buffer of {run.path} overwrote collected transitions; "
                                          "collect with a --buffer-size of at least --online-steps")
        rows = {k: v[buffer.size - collected:] for k, v in buffer.arrays().items()}
    out = {k: np.asarray(rows[k], np.float32) for k in TRANSITION_KEYS}
    require(len(out["observations"]) > 0, f"--extra-data {run_dir} holds no online transitions")
    out["terminals"][-1] = 1.0
    return out


def with_extra_data(dataset: Dataset, rows: dict[str, np.ndarray]) -> Dataset:
    """A new dataset: ``dataset``'s transitions followed by ``rows`` (whose last episode is closed)."""
    base = dataset.arrays()
    require(base["observations"].shape[1:] == rows["observations"].shape[1:]
            and base["actions"].shape[1:] == rows["actions"].shape[1:],
            "--extra-data has other observation or action dimensions than the offline dataset")
    return Dataset.from_dict({k: np.concatenate([base[k], rows[k]]) for k in TRANSITION_KEYS},
                             source=f"{dataset.source} + collected data")
