"""``TbEvents``: TensorBoard scalars written in this thread, so a failed write (a full disk) is an ``OSError``
here, where the caller handles it, instead of a traceback from a writer thread that then stops consuming
its queue (tensorboardX's ``SummaryWriter`` writes from one, and blocks the run once its queue is full).

The file is the one TensorBoard reads: ``tb/events.out.tfevents.<time>.<host>`` of ``Event`` records.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class TbEvents:
    """An event file under ``log_dir``; events are buffered and reach the disk at :meth:`flush`.

    Args:
        log_dir: the TensorBoard directory (created).
        purge_step: a resumed run's first step after its checkpoint: TensorBoard drops the events of earlier
            files at this step and later (they were written again), as ``SummaryWriter(purge_step=...)``.
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        os.makedirs(log_dir, exist_ok=True)
        self._writer = EventsWriter(str(Path(log_dir) / "events"))
        self._event = Event
        if purge_step is not None:
            self._writer.write_event(Event(step=purge_step, file_version="brain.Event:2"))
            self._writer.write_event(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def add_scalars(self, values: dict[str, float], step: int) -> None:
        """One scalar event per ``tag -> value`` at ``step``."""
        from tensorboardX.summary import scalar

        now = time.time()
        for tag, value in values.items():
            self._writer.write_event(self._event(summary=scalar(tag, value), step=step, wall_time=now))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
