"""SIGINT/SIGTERM as a flag the training loop reads once per step."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """Counts SIGINT/SIGTERM while active (a context manager; the old handlers come back on exit).

    ``signal`` is the name of the last signal (None before any); ``count`` how many arrived. The loop
    finishes the current online episode after the first and stops at once after the second.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name
        self.count += 1

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
