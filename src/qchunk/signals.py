"""SIGINT/SIGTERM as flags read at safe points, never as exceptions raised inside arbitrary code.

An exception raised by a signal handler lands wherever the interpreter happens to be: inside the import of
a C extension (jaxlib, mujoco) it has been seen to segfault the process or leave a half-initialised module
behind. So:

- :func:`defer_signals` (the CLI, from its first line): a signal is only recorded; a second one ends the
  process at once (status 130), which is safe while nothing has been written. :func:`deliver_deferred`
  ends that phase at a safe point: a recorded signal becomes a KeyboardInterrupt there, later ones raise as
  Ctrl-C does (SIGTERM too).
- :class:`StopFlag` (training, from its first write to its last): signals are counted, recorded ones
  included, and the training loop reads the count once per step.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[str] = []
"""Names of the signals recorded while deferred and not yet delivered."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _record(signum, frame) -> None:
    _pending.append(signal.Signals(signum).name)
    if len(_pending) == 1:
        os.write(2, f"\n{_pending[0]}: stopping once start-up is done (send it again to stop now)\n".encode())
    else:
        os.write(2, b"interrupted during start-up\n")
        os._exit(130)


def _raise(signum, frame) -> None:
    raise KeyboardInterrupt


def defer_signals() -> None:
    """From now on SIGINT/SIGTERM are recorded, not raised (see the module docstring); main thread only."""
    if _main_thread():
        for sig in _STOP_SIGNALS:
            signal.signal(sig, _record)


def deliver_deferred() -> None:
    """End the deferred phase: SIGINT/SIGTERM raise KeyboardInterrupt from now on, and a recorded one now."""
    if not _main_thread() or signal.getsignal(signal.SIGINT) is not _record:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise)
    if _pending:
        _pending.clear()
        raise KeyboardInterrupt


class StopFlag:
    """Counts SIGINT/SIGTERM while active (a context manager; the old handlers come back on exit), starting
    with those recorded by :func:`defer_signals` and not yet delivered.

    ``signal`` is the name of the last signal (None before any); ``count`` how many arrived. The loop
    finishes the current online episode after the first and stops at once after the second.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if _main_thread():
            for sig in _STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
            if _pending:
                self.signal, self.count = _pending[-1], len(_pending)
                _pending.clear()
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name
        self.count += 1

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            # start-up is over: what was deferred then is raised now, as Ctrl-C does
            signal.signal(sig, (signal.default_int_handler if sig == signal.SIGINT else _raise)
                          if handler is _record else handler)
