"""``RunLogger``: eval.csv and train.csv (atomic rewrites), TensorBoard events, optional W&B.

Every write happens in the caller's thread, so a failed one (a full disk) is an ``OSError`` there, which
the trainer turns into one line (TensorBoard included: :class:`~qchunk.logging.tb_events.TbEvents`).

CSV rows are kept in memory and the whole file is rewritten atomically at each write, so a killed run
never leaves a torn line. A resumed run rewrites both files from the rows stored in its checkpoint (rows
written after the checkpoint are dropped, rows lost from a damaged file come back), so every row up to
the checkpoint is there exactly once, under its header, and later rows are written again. TensorBoard's
events follow the same rule: ``tb/`` holds one event file, rewritten from those rows when a run resumes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_text


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class _CsvTable:
    def __init__(self, path: Path, rows: list[Mapping[str, Any]] | None):
        self.path = path
        self.rows: list[dict[str, str]] = []
        self.columns: list[str] = []
        if path.exists():
            path.unlink()
        for row in rows or ():
            self._add(row)
        if self.rows:
            self._flush()

    def _add(self, row: Mapping[str, Any]) -> None:
        for k in row:
            if k not in self.columns:
                self.columns.append(k)
        self.rows.append({k: _format(v) for k, v in row.items()})

    def append(self, row: Mapping[str, Any]) -> None:
        self._add(row)
        self._flush()

    def _flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


class RunLogger:
    """Writes ``eval.csv``, ``train.csv`` and TensorBoard events.

    Args:
        eval_csv, train_csv: the two CSV files (replaced: see ``rows``).
        tb_dir: directory of TensorBoard event files (None: no TensorBoard).
        rows: ``{"eval": [...], "train": [...]}``, the rows a resumed run had written up to its checkpoint
            (the files are rewritten with exactly these); None starts both files empty.
        resume_step: global step of that checkpoint. TensorBoard's event files are written anew, from
            ``rows``, whenever a logger opens: one record of the run, without steps that a resume repeats.
        wandb: log to Weights & Biases too (``wandb_kwargs`` go to ``wandb.init``; mode defaults to
            offline, so it works without a network; ``wandb_dir`` is its directory).
    """

    def __init__(self, eval_csv: Path, train_csv: Path, tb_dir: Path | None = None,
                 rows: Mapping[str, list] | None = None, resume_step: int | None = None, wandb: bool = False,
                 wandb_dir: Path | None = None, wandb_kwargs: Mapping[str, Any] | None = None):
        rows = rows or {}
        self.eval = _CsvTable(eval_csv, rows.get("eval"))
        self.train = _CsvTable(train_csv, rows.get("train"))
        self._tb = None
        if tb_dir is not None:
            from qchunk.logging.tb_events import TbEvents

            # One record per run: the event files of earlier processes (which may hold steps past the checkpoint)
            # are replaced by one written from the rows up to the checkpoint, so no step shows twice.
            for old in Path(tb_dir).glob("events.out.tfevents.*"):
                old.unlink()
            self._tb = TbEvents(tb_dir)
            for prefix, name in (("eval", "eval"), ("train", "train")):
                for row in rows.get(name) or ():
                    self._tb.add_scalars(self._numeric(prefix, row), int(row["step"]))
            self._tb.flush()
        self._wandb = None
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                raise QchunkError("W&B logging needs the wandb package: pip install 'qchunk[wandb]'") from None
            where = Path(wandb_dir or eval_csv.parent)
            run_id = hashlib.sha1(str(where.resolve()).encode()).hexdigest()[:12]  # one W&B run across resumes
            kwargs = {"mode": "offline", "dir": str(where), "id": run_id, "resume": "allow", **(wandb_kwargs or {})}
            self._wandb = wandb_module.init(**kwargs)

    def row_counts(self) -> dict[str, int]:
        """Rows written so far (stored in checkpoints)."""
        return {"eval": len(self.eval.rows), "train": len(self.train.rows)}

    @staticmethod
    def _numeric(prefix: str, row: Mapping[str, Any]) -> dict[str, float]:
        return {f"{prefix}/{k}": float(v) for k, v in row.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"
                and math.isfinite(v)}  # a task without a success signal has success NaN: not a scalar

    def _scalars(self, prefix: str, row: Mapping[str, Any], step: int) -> None:
        if self._tb is not None:
            self._tb.add_scalars(self._numeric(prefix, row), step)
        if self._wandb is not None:
            self._wandb.log(self._numeric(prefix, row), step=step)

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
        """Close the writers. A failed write here (a full disk) is dropped: the run has flushed its events
        before its last checkpoint (:meth:`flush`), and what follows it is written again by a resume."""
        tb, self._tb = self._tb, None
        if tb is not None:
            with contextlib.suppress(OSError):
                tb.close()
        if self._wandb is not None:
            self._wandb.finish()
