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

``config.json`` stores the fully resolved agent config, so :meth:`RunDir.load_agent` rebuilds the agent
exactly, with no re-resolution of presets.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError, require
from qchunk.fileio import atomic_write_json
from qchunk.training.checkpoint import Checkpoint, CheckpointStore, DamagedCheckpoint
from qchunk.training.config import TrainConfig, config_from_dict

CONFIG_FILE = "config.json"
EVAL_CSV = "eval.csv"
TRAIN_CSV = "train.csv"
RESULT_FILE = "result.json"
ONLINE_STATES_FILE = "online_states.npz"
"""Per-step online end-effector positions (``--save-online-states``), read by ``qchunk analyze trajectories``."""

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
    """``"key: OLD there, NEW now"`` for every field of two ``TrainConfig.to_dict()`` that differs."""
    return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
            if k not in free and old.get(k) != new.get(k)]


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

    def load_agent(self, step: int | None = None) -> tuple[Any, Checkpoint]:
        """The agent of checkpoint ``step`` (default: the newest that verifies), built from the stored config.

        Raises:
            QchunkError: no such checkpoint, a damaged one, or parameters that do not fit the stored config.
        """
        from qchunk.agents import agent_config_from_dict, create_agent

        record = self.read()
        if step is None:
            ckpt = self.checkpoints.newest_good()
            require(ckpt is not None, f"{self.path} has no intact checkpoint yet")
        else:
            try:
                ckpt = self.checkpoints.at_step(step)
            except FileNotFoundError:
                have = ", ".join(str(s) for s in self.checkpoints.steps()) or "none"
                raise QchunkError(f"{self.path} has no checkpoint at step {step} (available: {have})") from None
            except DamagedCheckpoint as e:
                raise QchunkError(f"checkpoint {step} of {self.path} is damaged ({e}); choose another") from None
        require({"observation_dim", "action_dim"} <= set(record.spaces),
                f"{self.path / CONFIG_FILE} has no agent dimensions (written by an older qchunk)")
        template = create_agent(agent_config_from_dict(record.agent), record.spaces["observation_dim"],
                                record.spaces["action_dim"])
        return ckpt.agent(template), ckpt

    # ------------------------------------------------------------------ writing
    def claim(self, cfg: TrainConfig, say: Callable[[str], None] = _say) -> Checkpoint | None:
        """Check that a run of ``cfg`` may write here; return the checkpoint to resume from (or None).

        Without ``cfg.resume`` the directory must not hold a run. With it, the stored settings must equal
        ``cfg`` (except :data:`RESUME_FREE_FIELDS`); damaged checkpoints are set aside and the newest
        intact one is returned. Every refusal is a one-line QchunkError.
        """
        if self.path.exists() and not self.path.is_dir():
            raise QchunkError(f"--run-dir {self.path} is a file, not a directory; choose another --run-dir")
        if self.holds_run():
            require(cfg.resume, f"run dir {self.path} already holds a run; pass --resume to continue it or choose "
                                "another --run-dir")
            diff = config_differences(self.read().train.to_dict(), cfg.to_dict())
            require(not diff, f"run dir {self.path} holds a run with other settings ({'; '.join(diff)}); resume "
                              "with the same settings or choose another --run-dir")
            ckpt = self.checkpoints.newest_good(report=say)
            if ckpt is None:
                say(f"no intact checkpoint in {self.path}: starting the run over from step 0")
            return ckpt
        if cfg.resume:
            require(not (self.path.is_dir() and any(self.path.iterdir())),
                    f"--resume: {self.path} holds files but no qchunk run (no {CONFIG_FILE}); check --run-dir")
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
