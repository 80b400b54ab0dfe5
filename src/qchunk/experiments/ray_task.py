"""One sweep run as a Ray task: :func:`run_one` trains one run directory, and :class:`CancelRelay` turns Ray's
cancellation into ``train()``'s "save a checkpoint and stop"."""

from __future__ import annotations

import _thread
import contextlib
import math
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_json, atomic_write_text
from qchunk.training.run_dir import RunDir

#: Name of the marker a run's task writes into its run directory when it starts (host, pid, resources).
TASK_MARKER = "sweep-task.json"
#: Where a run that failed with an unexpected exception leaves its traceback.
ERROR_FILE = "sweep-error.txt"


class CancelRelay:
    """Delivers a Ray cancellation to :func:`train` however early it arrives.

    Ray cancels a running task by raising SIGINT's handler in it. Before ``train()`` has installed its own
    handler (imports, data loading, building the agent) a plain KeyboardInterrupt could be swallowed by a
    library, or land in the middle of an import. So, from the task's start, SIGINT only sets a flag here; a
    watcher thread hands one SIGINT to ``train()``'s handler as soon as it is in place, and ``train()`` then
    finishes the episode, saves a checkpoint and stops.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._done = threading.Event()
        self._old = None
        self._active = threading.current_thread() is threading.main_thread()

    def _handle(self, signum, frame) -> None:
        self.requested.set()

    def __enter__(self) -> CancelRelay:
        if self._active:
            self._old = signal.signal(signal.SIGINT, self._handle)
            threading.Thread(target=self._watch, name="qchunk-cancel-relay", daemon=True).start()
        return self

    def _watch(self) -> None:
        while not self._done.is_set():
            if self.requested.is_set() and signal.getsignal(signal.SIGINT) not in (self._handle, None):
                # train()'s handler is installed: hand the request over. Not os.kill: Ray workers block SIGINT at
                # the OS level; interrupt_main calls the Python handler directly, as Ray's own cancel does.
                _thread.interrupt_main(signal.SIGINT)
                return
            self._done.wait(0.1)

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._active:
            signal.signal(signal.SIGINT, self._old)


def run_one(config: dict[str, Any], run_dir: str, env_vars: dict[str, str], cpus: float, gpus: float) -> dict:
    """Body of one run's Ray task: ``train(config, run_dir)``; never raises (the outcome is returned).

    Returns ``{"state": "finished" | "interrupted" | "failed", ...}``. A Ray cancellation arrives as SIGINT,
    which :func:`train` turns into "finish the episode, save a checkpoint, stop" (see :class:`CancelRelay`).
    """
    for k, v in env_vars.items():
        os.environ.setdefault(k, v)  # before JAX is imported in this fresh worker
    path = Path(run_dir)
    with CancelRelay() as relay:
        try:
            path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path / TASK_MARKER, {
                "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "cpus": cpus,
                "gpus": gpus, "cpu_count": os.cpu_count(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
            from qchunk.training import RunInterrupted, train
            from qchunk.training.config import config_from_dict
        except OSError as e:
            return {"state": "failed", "message": f"cannot write to {path}: {e.strerror}"}
        if relay.requested.is_set():
            return {"state": "interrupted", "message": "stopped before training began"}
        # resume only a run that exists: --resume refuses a directory holding other files (the marker above)
        config = {**config, "resume": RunDir(path).holds_run()}
        try:
            result = train(config_from_dict(config), path)
        except RunInterrupted as e:
            return {"state": "interrupted", "message": "checkpoint saved" if e.saved else "resumes from its "
                    "last checkpoint"}
        except KeyboardInterrupt:  # without a main thread to relay through
            return {"state": "interrupted", "message": "stopped"}
        except QchunkError as e:
            return {"state": "failed", "message": str(e)}
        except Exception as e:
            with contextlib.suppress(OSError):
                atomic_write_text(path / ERROR_FILE, traceback.format_exc())
            return {"state": "failed", "message": f"{type(e).__name__}: {e} (traceback in {path / ERROR_FILE})"}
    return {"state": "finished", "final_success": result.final_success, "offline_success": result.offline_success}


def worker_env(gpus_per_run: float) -> dict[str, str]:
    if gpus_per_run <= 0:
        return {"JAX_PLATFORMS": "cpu"}
    if gpus_per_run < 1:
        # JAX preallocates 75% of a GPU by default; runs sharing one GPU each take their share instead
        return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{math.floor(90 * gpus_per_run) / 100:.2f}"}
    return {}

