"""The Ray instance a sweep runs on: a private local one or a joined cluster, and the checks around it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from qchunk.errors import QchunkError


@contextlib.contextmanager
def ray_session(address: str | None, local_cpus: int | None) -> Iterator[Any]:
    """Join the cluster at ``address`` or start a private local Ray instance; shut down what this call started.

    Without ``address`` the instance is always a new one of this process (``address="local"``): a cluster
    that ``RAY_ADDRESS`` or ``ray start`` names is not joined (joining it with ``num_cpus`` is an error in
    Ray). Ray's notice about its token authentication is not shown (it concerns Ray, not the sweep).
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
    try:
        with _ray_token_notice_hidden():
            if address:
                _use_token_if_available()
                ray.init(address=address, **quiet)
            else:
                ray.init(address="local", num_cpus=local_cpus or os.cpu_count() or 1, include_dashboard=False,
                         object_store_memory=200 * 1024**2, **quiet)
    except Exception as e:  # Ray raises a bare Exception when its node does not start in time (an overloaded machine)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise QchunkError(f"could not start or reach {where}: {str(e).splitlines()[0] if str(e) else e}") from None
    if address:
        total = ray.cluster_resources()
        print(f"joined the Ray cluster at {address} ({total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU); "
              "runs use its resources (without --ray-address a private local instance is started)",
              file=sys.stderr, flush=True)
    try:
        yield ray
    finally:
        ray.shutdown()


def _use_token_if_available() -> None:
    """Before joining a cluster: send this user's Ray token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN``) when
    ``RAY_AUTH_MODE`` is unset, as Ray itself does only for a cluster it finds without an address. A
    ``ray start`` head authenticates by token by default, and a cluster without authentication accepts one."""
    with contextlib.suppress(ImportError, AttributeError):  # a Ray without token authentication
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


@contextlib.contextmanager
def _ray_token_notice_hidden() -> Iterator[None]:
    """Hide the WARNING Ray's ``ray.init`` logs about token authentication (enabled by default for a new
    local instance since Ray 2.5x; errors still show)."""
    log = logging.getLogger("ray._private.authentication")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def check_resources(ray, cpus: float, gpus: float, local: bool) -> None:
    total = ray.cluster_resources()
    have_cpu, have_gpu = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if cpus > have_cpu or gpus > have_gpu:
        msg = (f"a run needs {cpus:g} CPU and {gpus:g} GPU but the Ray cluster has {have_cpu:g} CPU and "
               f"{have_gpu:g} GPU")
        if local:
            raise QchunkError(msg + "; lower --cpus-per-run/--gpus-per-run or use --ray-address")
        print(f"warning: {msg}; runs wait until the cluster grows", file=sys.stderr)

