"""Checkpoints: one directory per checkpoint, written under a temporary name and renamed into place.

``checkpoints/step_0000012345/`` holds ``agent.msgpack`` (the agent pytree: parameters, optimiser state,
RNG key), ``state.json`` (counters, the sampler's numpy generator state, CSV row counts) and, once the
online phase has begun, ``online.npz`` (the transitions appended to the replay buffer). The rename is
atomic, so a directory named ``step_*`` is always complete; a killed save leaves only a ``.tmp-*``
directory that the next save removes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.fileio import atomic_savez, atomic_write_json

_PREFIX = "step_"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]

    def agent_bytes(self) -> bytes:
        return (self.path / "agent.msgpack").read_bytes()

    def online(self) -> dict[str, np.ndarray] | None:
        f = self.path / "online.npz"
        if not f.is_file():
            return None
        with np.load(f) as z:
            return {k: z[k] for k in z.files}


def save_checkpoint(root: Path, step: int, agent_bytes: bytes, state: dict[str, Any],
                    online: dict[str, np.ndarray] | None = None, keep: int = 2) -> Path:
    """Write a checkpoint for global ``step`` atomically; keep the newest ``keep`` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{step}-{os.getpid()}"
    tmp.mkdir()
    (tmp / "agent.msgpack").write_bytes(agent_bytes)
    if online is not None:
        atomic_savez(tmp / "online.npz", online, compressed=False)
    atomic_write_json(tmp / "state.json", {"step": step, **state})
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    final = root / f"{_PREFIX}{step:010d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(root.glob(f"{_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest complete checkpoint under ``root``, or None."""
    for path in sorted(root.glob(f"{_PREFIX}*"), reverse=True):
        try:
            state = json.loads((path / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if (path / "agent.msgpack").is_file():
            return Checkpoint(path, int(state["step"]), state)
    return None
