"""Read a fidelity fixture (``tests/fixtures/fidelity/NAME.npz``, written by ``tools/fidelity/record.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "fidelity"
"""Where the recorded fixtures live in a source checkout."""


@dataclass(frozen=True)
class Fixture:
    """One recorded update of one of the authors' agents (all arrays float32 unless noted)."""

    name: str
    """The case name (the file's stem)."""
    meta: dict[str, Any]
    """The case, the authors' resolved config (``meta['config']``), their commit and package versions."""
    arrays: dict[str, np.ndarray]
    """Every recorded array by its '/'-joined key."""

    @property
    def config(self) -> dict[str, Any]:
        """The authors' resolved agent config."""
        return self.meta["config"]

    def tree(self, prefix: str) -> dict[str, Any]:
        """The arrays under ``prefix/`` as a nested dict (``tree('params')['modules_critic'][...]``)."""
        out: dict[str, Any] = {}
        for key, value in self.arrays.items():
            if not key.startswith(prefix + "/"):
                continue
            node = out
            *parents, leaf = key[len(prefix) + 1 :].split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return out

    def flat(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays under ``prefix/``, keyed by the rest of their path."""
        return {k[len(prefix) + 1 :]: v for k, v in self.arrays.items() if k.startswith(prefix + "/")}

    def draws(self, tag: str) -> list[np.ndarray]:
        """The random draws of ``tag`` (``update`` or ``act``) in the order the authors' code made them."""
        keys = sorted(k for k in self.arrays if k.startswith(f"draws/{tag}/"))
        return [self.arrays[k] for k in keys]

    def batch(self) -> dict[str, np.ndarray]:
        """The batch of the update (the authors' sampler's output: ``observations (B, D)``, ``actions (B, h, A)``,
        ``rewards``, ``masks``, ``valid``, ``terminals`` ``(B, h)``, ``next_observations (B, h, D)``)."""
        return self.flat("batch")


def load_fixture(path: str | Path) -> Fixture:
    """Read the fixture file ``path`` (numbers only: loaded without pickle)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return Fixture(path.stem, meta, arrays)


def fixture_paths(directory: str | Path = FIXTURE_DIR) -> list[Path]:
    """Every fixture file in ``directory``, sorted by name."""
    return sorted(Path(directory).glob("*.npz"))
