"""Plain dataset files in the D4RL layout (``.npz`` or ``.hdf5``), so existing D4RL-style files load as they are.

The layout, one row per step, at the top level of the file:

- ``observations (N, obs)``, ``actions (N, A)``, ``rewards (N,)``;
- ``terminals (N,)``: 1 where the episode *terminated* (no bootstrapping past it: mask 0);
- ``timeouts (N,)``: 1 where the episode was *cut* by a time limit (an episode boundary that is not a
  termination: mask 1);
- optional ``next_observations (N, obs)``.

At least one of ``terminals`` and ``timeouts`` must be there (the other counts as all zeros). Without
``next_observations``, ``next_observations[i] = observations[i + 1]`` inside an episode; the row of a
timeout (and the file's last row when it ends nothing), whose next state is not stored, is dropped (D4RL's
``qlearning_dataset`` does the same), so the row before it becomes the episode's last. A file whose last row
ends nothing (a D4RL file cut mid-episode) ends its last episode there, as a boundary with mask 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from qchunk.data.columns import FLAG, READ_ERRORS, SCALAR, VECTOR, check_columns, h5_array, read_error
from qchunk.errors import QchunkError, require

#: Keys of the layout (``terminals`` / ``timeouts``: at least one; ``next_observations`` optional).
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")

HDF5_SUFFIXES = (".hdf5", ".h5")

#: The kind of each column (see :mod:`qchunk.data.columns`).
D4RL_COLUMNS = {"observations": VECTOR, "actions": VECTOR, "rewards": SCALAR, "terminals": FLAG, "timeouts": FLAG,
                "next_observations": VECTOR}


def read_d4rl_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The D4RL-layout arrays of ``path`` (``.npz``, ``.hdf5`` or ``.h5``), as stored.

    Raises:
        QchunkError: the file is missing, unreadable (empty, cut short, another type), of another suffix,
            lacks a required key, or an array of the wrong shape, dtype or length, or not finite.
    """
    path = Path(path).expanduser()
    require(path.is_file(), f"dataset file {path} not found (a --dataset file is an .npz or .hdf5 in the D4RL "
                            "layout; make one with qchunk data collect --out FILE)")
    suffix = path.suffix.lower()
    require(suffix in (".npz", *HDF5_SUFFIXES), f"{path}: a dataset file must end in .npz, .hdf5 or .h5 (D4RL "
                                                f"layout), got {suffix or 'no suffix'!r}")
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                require(hasattr(f, "files"), f"{path}: a single array, not an .npz archive of named arrays")
                arrays = {k: np.asarray(f[k]) for k in f.files if k in D4RL_KEYS}
        else:
            try:
                import h5py
            except ImportError:
                raise QchunkError(f"{path}: reading .hdf5 files needs h5py; pip install h5py (or qchunk[minari])") \
                    from None
            with h5py.File(path, "r") as f:
                arrays = {k: h5_array(f, k, str(path)) for k in D4RL_KEYS if k in f}
    except QchunkError:
        raise
    except READ_ERRORS as e:
        raise read_error(path, e) from None
    missing = [k for k in ("observations", "actions", "rewards") if k not in arrays]
    require(not missing, f"{path}: missing {missing}; a D4RL-layout file needs observations, actions, rewards and "
                         "terminals and/or timeouts")
    require("terminals" in arrays or "timeouts" in arrays,
            f"{path}: the file has neither 'terminals' nor 'timeouts', so its episode ends are unknown; add "
            "terminals (1 where an episode terminated) and/or timeouts (1 where a time limit cut it)")
    arrays = check_columns(arrays, D4RL_COLUMNS, str(path))
    if "next_observations" in arrays:
        require(arrays["next_observations"].shape == arrays["observations"].shape,
                f"{path}: 'next_observations' has shape {arrays['next_observations'].shape} but 'observations' "
                f"{arrays['observations'].shape}")
    return arrays


def d4rl_transitions(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Transitions of D4RL-layout ``arrays``: ``observations``, ``actions``, ``rewards``,
    ``next_observations``, ``terminals`` (1 at each episode's last transition, any reason) and ``masks``
    (0 where the episode terminated), the actions unscaled; see the module docstring for the semantics."""
    n = len(arrays["observations"])
    for key in ("terminals", "timeouts"):
        if key in arrays:
            v = np.asarray(arrays[key]).reshape(-1)
            require(v.shape == (n,) and np.isin(v, (0, 1)).all(), f"{source}: '{key}' must be (N,) of 0/1 (or bool)")
    term = np.asarray(arrays.get("terminals", np.zeros(n))).reshape(-1).astype(bool)
    timeout = np.asarray(arrays.get("timeouts", np.zeros(n))).reshape(-1).astype(bool) & ~term
    obs = np.asarray(arrays["observations"])
    if "next_observations" in arrays:
        keep = np.ones(n, bool)
        next_obs = np.asarray(arrays["next_observations"])
    else:
        keep = ~timeout  # a timeout row's next state is not stored
        keep[-1] &= bool(term[-1])  # nor is that of a last row that ends nothing
        next_obs = np.concatenate([obs[1:], obs[-1:]])  # a terminal's next state is never bootstrapped from
    end = term | timeout
    end[-1] = True  # a file cut mid-episode ends its last episode there
    # A kept row ends its episode when it or a dropped row before the next kept one ends one (dropped rows
    # are timeouts or the last row, both episode ends): the row before a dropped timeout becomes the last.
    idx = np.flatnonzero(keep)
    require(idx.size > 0, f"{source}: no transition is left once rows without a next observation are dropped")
    counts = np.r_[0, np.cumsum(end)]
    ends = counts[np.r_[idx[1:], n]] - counts[idx] > 0
    return {"observations": obs[idx], "actions": np.asarray(arrays["actions"])[idx],
            "rewards": np.asarray(arrays["rewards"]).reshape(-1)[idx], "next_observations": next_obs[idx],
            "terminals": ends.astype(np.float32), "masks": (~term[idx]).astype(np.float32)}
