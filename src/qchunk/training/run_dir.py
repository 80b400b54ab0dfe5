"""``RunDir``: the one owner of a run directory's layout. Everything that writes or reads runs goes here.

Layout::

    RUN_DIR/config.json          {"train": TrainConfig, "agent": the resolved agent config,
                                  "spaces": {"observation_dim", "action_dim"}, "versions": {...}}
    RUN_DIR/eval.csv             one row per evaluation
    RUN_DIR/train.csv            losses, Q statistics, throughput
    RUN_DIR/result.json          written last, when the run has finished
    RUN_DIR/online_states.npz    optional (``--save-online-states``)
    RUN_DIR/tb/                  TensorBoard events
    RUN_DIR/checkpoints/step_N/  see :mod:`qchunk.training.checkpoint`
    RUN_DIR/.qchunk.lock         while a process writes the run (:mod:`qchunk.dir_lock`)

A directory without ``config.json`` may hold only :data:`BEFORE_CONFIG`; one holding other files is the
user's and is refused (:meth:`RunDir.check_owned`).

``config.json`` stores the fully resolved agent config, so :meth:`RunDir.load_agent` rebuilds the agent
exactly, with no re-resolution of presets.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qchunk.dir_lock import LOCK_FILE
from qchunk.errors import QchunkError, require
from qchunk.fileio import atomic_write_json
from qchunk.ownership import foreign_entries, name_entries
from qchunk.training.checkpoint import Checkpoint, CheckpointStore, DamagedCheckpoint, describe_pick
from qchunk.training.config import TrainConfig, config_from_dict
from qchunk.training.settings_diff import setting_differences, summarize_differences

CONFIG_FILE = "config.json"
EVAL_CSV = "eval.csv"
TRAIN_CSV = "train.csv"
RESULT_FILE = "result.json"
ONLINE_STATES_FILE = "online_states.npz"
"""Per-step online end-effector positions (``--save-online-states``), read by ``qchunk analyze trajectories``."""

LAUNCHER_FILES = frozenset({"sweep-task.json", "sweep-error.txt"})
"""What ``qchunk sweep`` writes into a run directory besides the run (its task marker, a failed run's traceback);
it may come before ``config.json``."""
BEFORE_CONFIG = LAUNCHER_FILES | {LOCK_FILE}
"""The only names a run directory may hold before qchunk has written its ``config.json``."""
OWN_ENTRIES = BEFORE_CONFIG | {CONFIG_FILE, EVAL_CSV, TRAIN_CSV, RESULT_FILE, ONLINE_STATES_FILE, "tb",
                               "checkpoints", "eval", "plots", "analysis"}
"""Everything qchunk writes into a run directory (``eval/``, ``plots/``, ``analysis/``: ``qchunk eval``, ``qchunk
plot``, ``qchunk analyze trajectories``)."""

RESUME_FREE_FIELDS = frozenset({"resume", "progress", "eval_workers", "eval_envs", "tensorboard", "wandb", "scan_block",
                                "sample_on", "seed_axis"})
"""TrainConfig fields that may differ between a run and its ``--resume`` (they do not change the training;
``eval_envs``, a memory setting, changes only which policy noise a stochastic evaluation draws; ``scan_block``,
``sample_on`` and ``seed_axis`` choose how the same updates on the same batches are computed, so they change
only float rounding)."""


def _say(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class RunRecord:
    """What ``config.json`` says about a run."""

    train: TrainConfig
    agent: dict[str, Any]
    """The resolved agent config as written (``dataclasses.asdict``)."""
    spaces: dict[str, int]
    """``observation_dim`` and ``action_dim`` of the agent."""
    versions: dict[str, str]


def config_differences(old: dict[str, Any], new: dict[str, Any], free=RESUME_FREE_FIELDS) -> list[str]:
    """``"key: OLD there, NEW now"`` for every field of two ``TrainConfig.to_dict()`` that differs (agent fields
    by their own name; see :mod:`qchunk.training.settings_diff`)."""
    return setting_differences(old, new, free, there="there")


def versions() -> dict[str, str]:
    """Versions of qchunk and the libraries that decide its numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import jax

    from qchunk import __version__

    out = {"qchunk": __version__, "python": sys.version.split()[0], "device": str(jax.devices()[0])}
    for pkg in ("jax", "flax", "optax", "mujoco", "ogbench", "gymnasium", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


class RunDir:
    """A run directory (it need not exist yet)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.checkpoints = CheckpointStore(self.path / "checkpoints")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ layout
    def file(self, name: str) -> Path:
        """``RUN_DIR/name`` for one of the layout's names (``EVAL_CSV``, ``TRAIN_CSV``, ...)."""
        return self.path / name

    @property
    def tb_dir(self) -> Path:
        return self.path / "tb"

    def holds_run(self) -> bool:
        return (self.path / CONFIG_FILE).is_file()

    def foreign_files(self) -> list[str]:
        """Names in the directory that qchunk did not write: before ``config.json`` everything but
        :data:`BEFORE_CONFIG`; once it exists (a run), the names outside :data:`OWN_ENTRIES`."""
        own = OWN_ENTRIES if self.holds_run() else BEFORE_CONFIG
        return foreign_entries(self.path, lambda name: name in own)

    def check_owned(self, flag: str = "--run-dir") -> None:
        """Refuse, in one line and before any work, a path that is a file, a ``config.json`` that is not a
        qchunk run's, or a directory without a run that holds files qchunk did not write."""
        if self.path.exists() and not self.path.is_dir():
            raise QchunkError(f"{flag} {self.path} is a file, not a directory; choose another {flag}")
        if self.holds_run():
            self.read()
            return
        foreign = self.foreign_files()
        require(not foreign, f"run dir {self.path} holds files but no qchunk run (no {CONFIG_FILE}): "
                             f"{name_entries(foreign)} were not written by qchunk; move them or choose another {flag}")

    def erase(self) -> None:
        """Delete the run here (every entry of :data:`OWN_ENTRIES` but the lock), for a fresh start. Refuses,
        before deleting anything, a directory that holds files qchunk did not write. Call it holding the lock."""
        self.check_owned()
        foreign = self.foreign_files()
        require(not foreign, f"--fresh: run dir {self.path} holds files qchunk did not write "
                             f"({name_entries(foreign)}); move them or choose another --run-dir")
        # config.json last: an erase cut short still leaves a run directory (--fresh again finishes it)
        for name in [*sorted(OWN_ENTRIES - {LOCK_FILE, CONFIG_FILE}), CONFIG_FILE]:
            entry = self.path / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()

    def is_finished(self) -> bool:
        return self.read_result() is not None

    # ------------------------------------------------------------------ reading
    def read(self) -> RunRecord:
        """Parse ``config.json``; raises QchunkError when it is missing or unreadable."""
        path = self.path / CONFIG_FILE
        require(path.is_file(), f"{self.path} is not a qchunk run directory (no {CONFIG_FILE})")
        try:
            d = json.loads(path.read_text())
            return RunRecord(config_from_dict(d["train"]), dict(d.get("agent", {})), dict(d.get("spaces", {})),
                             dict(d.get("versions", {})))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise QchunkError(f"{path} is unreadable; it does not describe a qchunk run") from None

    def read_result(self) -> dict[str, Any] | None:
        """``result.json`` of a finished run, or None."""
        try:
            d = json.loads((self.path / RESULT_FILE).read_text())
        except (OSError, ValueError):
            return None
        return d if isinstance(d, dict) and d.get("finished") else None

    def rows(self, name: str) -> list[dict[str, str]]:
        """The rows of ``eval.csv`` or ``train.csv`` (empty when the file does not exist yet)."""
        path = self.path / name
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def load_agent(self, step: int | None = None, say: Callable[[str], None] | None = None,
                   user: str = "using") -> tuple[Any, Checkpoint]:
        """The agent of checkpoint ``step`` (default: the newest that verifies), built from the stored config.
        ``say(line)``, when given, hears one line naming the checkpoint used (``user``: what is done with it,
        e.g. ``"evaluating"``) and every newer one skipped, and why (damaged ones are left in place).

        Raises:
            QchunkError: no such checkpoint, a damaged one, or parameters that do not fit the stored config.
        """
        from qchunk.agents import agent_config_from_dict, create_agent

        record = self.read()
        if step is None:
            ckpt, skipped = self.checkpoints.pick()
            require(ckpt is not None, f"{self.path} has no intact checkpoint yet"
                                      + (f" ({describe_pick(None, skipped)})" if skipped else ""))
            if say is not None:
                say(f"{user} {self.label()}: {describe_pick(ckpt, skipped)}")
        else:
            try:
                ckpt = self.checkpoints.at_step(step)
            except FileNotFoundError:
                have = ", ".join(str(s) for s in self.checkpoints.steps()) or "none"
                raise QchunkError(f"{self.path} has no checkpoint at step {step} (available: {have})") from None
            except DamagedCheckpoint as e:
                raise QchunkError(f"checkpoint {step} of {self.path} is damaged ({e}); choose another") from None
            if say is not None:
                say(f"{user} {self.label()}: {describe_pick(ckpt, [])}")
        require({"observation_dim", "action_dim"} <= set(record.spaces),
                f"{self.path / CONFIG_FILE} has no agent dimensions (written by an older qchunk)")
        template = create_agent(agent_config_from_dict(record.agent), record.spaces["observation_dim"],
                                record.spaces["action_dim"])
        return ckpt.agent(template), ckpt

    def label(self) -> str:
        """``PATH (seed K)``: the run directory and, when ``config.json`` says it, its seed."""
        try:
            return f"{self.path} (seed {self.read().train.seed})"
        except QchunkError:
            return str(self.path)

    # ------------------------------------------------------------------ writing
    def claim(self, cfg: TrainConfig, say: Callable[[str], None] = _say) -> Checkpoint | None:
        """Check that a run of ``cfg`` may write here; return the checkpoint to resume from (or None).

        Without ``cfg.resume`` the directory must not hold a run. With it, the stored settings must equal
        ``cfg`` (except :data:`RESUME_FREE_FIELDS`); damaged checkpoints are set aside and the newest
        intact one is returned, and ``say`` hears one line naming it (and the seed) and every checkpoint
        skipped, and why. A directory without a run may hold no files but qchunk's (:meth:`check_owned`).
        Call it holding the directory's lock (:mod:`qchunk.dir_lock`): it renames and removes
        checkpoint files. Every refusal is a one-line QchunkError.
        """
        self.check_owned()
        if self.holds_run():
            require(cfg.resume, f"run dir {self.path} already holds a run; pass --resume to continue it or choose "
                                "another --run-dir")
            diff = config_differences(self.read().train.to_dict(), cfg.to_dict())
            require(not diff, f"run dir {self.path} holds a run with other settings ({summarize_differences(diff)}); "
                              "resume with the same settings or choose another --run-dir")
            self.checkpoints.remove_stale_saves()
            ckpt, skipped = self.checkpoints.pick(set_aside=True)
            if ckpt is None:
                say(f"no intact checkpoint in {self.path} (seed {cfg.seed}): starting the run over from step 0"
                    + (f" ({describe_pick(None, skipped)})" if skipped else ""))
            else:
                say(f"resuming {self.path} (seed {cfg.seed}) from {describe_pick(ckpt, skipped)}")
            return ckpt
        if cfg.resume:
            say(f"no checkpoint in {self.path}: starting a new run")
        self._check_writable()
        return None

    def _check_writable(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise QchunkError(f"run dir {self.path} is not writable ({e.strerror}); choose another --run-dir") from None

    def write_config(self, cfg: TrainConfig, agent_config: Any, observation_dim: int, action_dim: int) -> None:
        """Write ``config.json`` (once: a resumed run keeps the original)."""
        if not self.holds_run():
            atomic_write_json(self.path / CONFIG_FILE, {
                "train": cfg.to_dict(), "agent": dataclasses.asdict(agent_config),
                "spaces": {"observation_dim": int(observation_dim), "action_dim": int(action_dim)},
                "versions": versions()})

    def open_logger(self, cfg: TrainConfig, evals: list, train_rows: list, ckpt: Checkpoint | None):
        """The :class:`~qchunk.logging.RunLogger` of a run of ``cfg`` here: a resumed run (``ckpt``) gets
        its CSVs rewritten with exactly the rows up to the checkpoint (``evals``, ``train_rows``)."""
        from qchunk.logging import RunLogger

        return RunLogger(self.path / EVAL_CSV, self.path / TRAIN_CSV, self.tb_dir if cfg.tensorboard else None,
                         rows={"eval": evals, "train": train_rows} if ckpt is not None else None,
                         resume_step=ckpt.step if ckpt is not None else None, wandb=cfg.wandb,
                         wandb_kwargs={"project": "qchunk", "config": cfg.to_dict(), "name": self.path.name})

    def write_result(self, result: Any) -> None:
        """Write ``result.json``, last: its presence means the run finished (sweeps skip such runs)."""
        atomic_write_json(self.path / RESULT_FILE, result.to_json())


OWN_FOLDERS = ("plots", "report", "analysis")
"""Folders of a run or sweep directory that hold only what qchunk's plot, report and analysis commands wrote."""


def in_own_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies in a :data:`OWN_FOLDERS` folder of a run (``config.json``) or sweep (``sweep.json``)
    directory, so that qchunk wrote it (figures drawn before they carried :data:`qchunk.ownership.MARK` too)."""
    folder = Path(path).parent
    return folder.name in OWN_FOLDERS and any((folder.parent / n).is_file() for n in (CONFIG_FILE, "sweep.json"))


def find_runs(root: str | os.PathLike) -> Iterator[RunDir]:
    """Every run directory at or below ``root`` (directories holding ``config.json``), in path order; the
    inside of a run (checkpoints, TensorBoard, reports, plots) is not searched."""
    root = Path(root).expanduser()
    for here, dirs, files in os.walk(root):
        if CONFIG_FILE in files:
            dirs[:] = []
            yield RunDir(here)
        else:
            dirs[:] = sorted(d for d in dirs if d not in ("checkpoints", "tb", "report", "plots"))
