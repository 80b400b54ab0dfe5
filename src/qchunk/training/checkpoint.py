"""Checkpoints: one directory per checkpoint, checksummed, written under a temporary name and renamed.

``checkpoints/step_0000012345/`` holds ``agent.msgpack`` (the agent pytree: parameters, optimiser state,
RNG key), ``state.json`` (the run state: counters, the sampler's generator, the CSV rows), once the online
phase has begun ``buffer.npz`` (the replay buffer in its own format), and ``manifest.json``: the size and
SHA-256 of every other file, written last. The directory rename is atomic, so a ``step_*`` directory is
always complete; a killed save leaves only a ``.tmp-<step>-<pid>`` directory. A save removes only its own
process's leftovers; another writer's are removed by :meth:`CheckpointStore.remove_stale_saves`, under the
run directory's lock, once their process is gone.

Loading verifies the manifest. A checkpoint that fails (a file cut short, zeroed or garbled, or missing)
is set aside as ``damaged-step_*`` (never deleted, never loaded again) and the next older one is tried.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_savez, atomic_write_json, atomic_write_text

PREFIX = "step_"
DAMAGED_PREFIX = "damaged-"
MANIFEST = "manifest.json"
AGENT_FILE = "agent.msgpack"
STATE_FILE = "state.json"
BUFFER_FILE = "buffer.npz"


class DamagedCheckpoint(Exception):
    """A checkpoint whose files do not match its manifest (the message names the file)."""


@dataclass
class Checkpoint:
    """A verified checkpoint directory."""

    path: Path
    step: int
    state: dict[str, Any]

    def agent_bytes(self) -> bytes:
        return (self.path / AGENT_FILE).read_bytes()

    def agent(self, template):
        """The stored agent, read into ``template`` (an agent of the same config); raises QchunkError when
        the parameters do not fit it."""
        from flax import serialization

        try:
            return serialization.from_bytes(template, self.agent_bytes())
        except (ValueError, KeyError, TypeError) as e:
            raise QchunkError(f"{self.path} does not fit the agent of this run's config ({e})") from None

    def buffer(self) -> dict[str, np.ndarray] | None:
        """The replay buffer's arrays (``ReplayBuffer.state_dict``), or None before the online phase."""
        f = self.path / BUFFER_FILE
        if not f.is_file():
            return None
        with np.load(f) as z:
            return {k: z[k] for k in z.files}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path) -> Checkpoint:
    """Check every file of checkpoint ``path`` against its manifest; raises :class:`DamagedCheckpoint`."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DamagedCheckpoint(f"{MANIFEST} is missing or unreadable") from None
    for name in (AGENT_FILE, STATE_FILE):
        if name not in files:
            raise DamagedCheckpoint(f"{MANIFEST} does not list {name}")
    for name, want in files.items():
        f = path / name
        if not f.is_file():
            raise DamagedCheckpoint(f"{name} is missing")
        if f.stat().st_size != want["bytes"]:
            raise DamagedCheckpoint(f"{name} has {f.stat().st_size} bytes, the manifest says {want['bytes']}")
        if _sha256(f) != want["sha256"]:
            raise DamagedCheckpoint(f"{name} does not match its checksum")
    try:
        state = json.loads((path / STATE_FILE).read_text())
        return Checkpoint(path, int(state["step"]), state)
    except (ValueError, KeyError, TypeError):
        raise DamagedCheckpoint(f"{STATE_FILE} is unreadable") from None


Skipped = tuple[str, str, "str | None"]
"""A checkpoint passed over: its directory name, why, and the name it was set aside as (None: left in place)."""


def describe_pick(ckpt: Checkpoint | None, skipped: list[Skipped]) -> str:
    """One clause naming the checkpoint picked and every newer one skipped, and why, e.g. ``checkpoint
    step_0000000200 (step 200), the newest intact one: checkpoint step_0000000400 is damaged (...); set aside
    as damaged-step_0000000400`` (``ckpt`` None: only the skipped ones)."""
    why = ", and ".join(f"checkpoint {name} is damaged ({reason})" + (f"; set aside as {moved}" if moved else
                                                                       ", skipped")
                        for name, reason, moved in skipped)
    if ckpt is None:
        return why
    used = f"checkpoint {ckpt.path.name} (step {ckpt.step})"
    return f"{used}, the newest intact one: {why}" if skipped else used


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


class CheckpointStore:
    """The ``checkpoints/`` directory of one run: save, list, verify, set aside, retain.

    Args:
        root: the directory.
        keep: how many of the newest checkpoints to keep (older ones are deleted after each save, except
            the one the run resumed from).
    """

    def __init__(self, root: Path, keep: int = 2):
        self.root, self.keep = root, keep
        self.protected: Path | None = None

    def paths(self) -> list[Path]:
        """Checkpoint directories, newest first."""
        return sorted(self.root.glob(f"{PREFIX}*"), reverse=True) if self.root.is_dir() else []

    def save(self, step: int, agent_bytes: bytes, state: Mapping[str, Any],
             buffer: Mapping[str, np.ndarray] | None = None) -> Path:
        """Write the checkpoint of global ``step`` atomically, then apply retention."""
        self.root.mkdir(parents=True, exist_ok=True)
        for own in self.root.glob(f".tmp-*-{os.getpid()}"):  # this process's own interrupted saves only
            shutil.rmtree(own, ignore_errors=True)
        tmp = self.root / f".tmp-{step}-{os.getpid()}"
        tmp.mkdir()
        try:
            self._write(tmp, step, agent_bytes, state, buffer)
        except BaseException:  # a full disk, say: no partial directory stays behind to keep it full
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = self.root / f"{PREFIX}{step:010d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        self._retain(final)
        return final

    @staticmethod
    def _write(tmp: Path, step: int, agent_bytes: bytes, state: Mapping[str, Any],
               buffer: Mapping[str, np.ndarray] | None) -> None:
        with open(tmp / AGENT_FILE, "wb") as f:
            f.write(agent_bytes)
        if buffer is not None:
            atomic_savez(tmp / BUFFER_FILE, buffer, compressed=False)
        atomic_write_json(tmp / STATE_FILE, {"step": step, **state})
        files = {}
        for f in sorted(tmp.iterdir()):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
            files[f.name] = {"bytes": f.stat().st_size, "sha256": _sha256(f)}
        atomic_write_text(tmp / MANIFEST, json.dumps({"step": step, "files": files}, indent=2) + "\n")

    def _retain(self, newest: Path) -> None:
        for old in self.paths()[self.keep:]:
            if old not in (self.protected, newest):
                shutil.rmtree(old, ignore_errors=True)

    def remove_stale_saves(self) -> list[Path]:
        """Remove the ``.tmp-<step>-<pid>`` directories of saves whose process is gone (killed mid-save);
        those of a live process are kept. Call it holding the run directory's lock. Returns the removed."""
        removed = []
        for tmp in self.root.glob(".tmp-*") if self.root.is_dir() else ():
            try:
                pid = int(tmp.name.rsplit("-", 1)[1])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid() or _process_gone(pid):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        return removed

    def set_aside(self, path: Path) -> Path:
        """Rename a damaged checkpoint to ``damaged-step_*`` (a name no loader or retention touches)."""
        target = path.with_name(DAMAGED_PREFIX + path.name)
        n = 1
        while target.exists():
            target = path.with_name(f"{DAMAGED_PREFIX}{n}-{path.name}")
            n += 1
        os.replace(path, target)
        return target

    def pick(self, set_aside: bool = False) -> tuple[Checkpoint | None, list[Skipped]]:
        """The newest checkpoint that verifies (None if none does) and the newer ones skipped, and why;
        ``set_aside``: rename each damaged one to ``damaged-step_*`` (only under the run directory's lock)."""
        skipped: list[Skipped] = []
        for path in self.paths():
            try:
                return verify(path), skipped
            except DamagedCheckpoint as e:
                skipped.append((path.name, str(e), self.set_aside(path).name if set_aside else None))
        return None, skipped

    def newest_good(self, report=None) -> Checkpoint | None:
        """The newest checkpoint that verifies; damaged newer ones are set aside and ``report(line)`` is
        told about each (None: nothing is renamed, damaged ones are only skipped)."""
        ckpt, skipped = self.pick(set_aside=report is not None)
        for name, why, moved in skipped if report is not None else ():
            report(f"checkpoint {name} is damaged ({why}); set aside as {moved}")
        return ckpt

    def at_step(self, step: int) -> Checkpoint:
        """The checkpoint of global ``step``, verified (raises FileNotFoundError or DamagedCheckpoint)."""
        path = self.root / f"{PREFIX}{step:010d}"
        if not path.is_dir():
            raise FileNotFoundError(path)
        return verify(path)

    def steps(self) -> list[int]:
        """Global steps of the checkpoint directories present, oldest first (not verified)."""
        out = []
        for p in self.paths():
            try:
                out.append(int(p.name[len(PREFIX):]))
            except ValueError:
                continue
        return sorted(out)


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest checkpoint under ``root`` that verifies (damaged ones are skipped, not moved), or None."""
    return CheckpointStore(Path(root)).newest_good()
