"""``RunLogger``: eval.csv and train.csv (atomic rewrites), TensorBoard events, optional W&B.

CSV rows are kept in memory and the whole file is rewritten atomically at each write, so a killed run
never leaves a torn line. A resumed run truncates both files to the row counts stored in its checkpoint,
so rows produced after that checkpoint are written again exactly once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_text


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class _CsvTable:
    def __init__(self, path: Path, keep_rows: int | None):
        self.path = path
        self.rows: list[dict[str, str]] = _read_csv(path)[:keep_rows] if keep_rows is not None else []
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else []
        if keep_rows is not None:
            self._flush()
        elif path.exists():
            path.unlink()

    def append(self, row: Mapping[str, Any]) -> None:
        for k in row:
            if k not in self.columns:
                self.columns.append(k)
        self.rows.append({k: _format(v) for k, v in row.items()})
        self._flush()

    def _flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


class RunLogger:
    """Writes ``eval.csv``, ``train.csv`` and TensorBoard events under ``run_dir``.

    Args:
        run_dir: the run directory.
        resume_rows: ``{"eval": n, "train": m}`` from a checkpoint: keep that many rows of each CSV
            (None: start both files empty).
        resume_step: global step of that checkpoint (TensorBoard events after it are purged).
        tensorboard: write TensorBoard event files under ``run_dir/tb``.
        wandb: log to Weights & Biases too (``wandb_kwargs`` go to ``wandb.init``; mode defaults to
            offline, so it works without a network).
    """

    def __init__(self, run_dir: Path, resume_rows: Mapping[str, int] | None = None, resume_step: int | None = None,
                 tensorboard: bool = True, wandb: bool = False, wandb_kwargs: Mapping[str, Any] | None = None):
        keep = resume_rows or {}
        self.eval = _CsvTable(run_dir / "eval.csv", keep.get("eval") if resume_rows is not None else None)
        self.train = _CsvTable(run_dir / "train.csv", keep.get("train") if resume_rows is not None else None)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            # events after the checkpoint's step are dropped; those at that step were flushed before it
            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge, flush_secs=30)
        self._wandb = None
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                raise QchunkError("W&B logging needs the wandb package: pip install 'qchunk[wandb]'") from None
            run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]  # one W&B run across resumes
            kwargs = {"mode": "offline", "dir": str(run_dir), "id": run_id, "resume": "allow", **(wandb_kwargs or {})}
            self._wandb = wandb_module.init(**kwargs)

    def row_counts(self) -> dict[str, int]:
        """Rows written so far (stored in checkpoints)."""
        return {"eval": len(self.eval.rows), "train": len(self.train.rows)}

    def _scalars(self, prefix: str, row: Mapping[str, Any], step: int) -> None:
        numeric = {f"{prefix}/{k}": float(v) for k, v in row.items()
                   if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"}
        if self._tb is not None:
            for k, v in numeric.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(numeric, step=step)

    def log_eval(self, row: Mapping[str, Any]) -> None:
        self.eval.append(row)
        self._scalars("eval", row, int(row["step"]))

    def log_train(self, row: Mapping[str, Any]) -> None:
        self.train.append(row)
        self._scalars("train", row, int(row["step"]))

    def flush(self) -> None:
        """Push buffered TensorBoard events to disk (called before every checkpoint)."""
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
