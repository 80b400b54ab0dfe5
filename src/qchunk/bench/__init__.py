"""Benchmarks: ``qchunk bench`` and its suites.

- :mod:`qchunk.bench.command`: ``qchunk bench`` itself (:func:`main`); its arguments are in :mod:`qchunk.bench.args`.
- :mod:`qchunk.bench.update`: the single-agent update/acting benchmark (:func:`run_bench`).
- :mod:`qchunk.bench.suites`: the suites (``update``, ``eval``, ``data``, ``seeds``, ``e2e``) and the quick set.
- :mod:`qchunk.bench.results`: result documents (hardware, versions) and the markdown summary.

Imports are lazy so that light modules (the memory probe of the ``data`` suite) load without JAX.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchArgs", "main", "run_bench"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import importlib

        home = {"BenchArgs": "args", "main": "command", "run_bench": "update"}[name]
        return getattr(importlib.import_module(f"qchunk.bench.{home}"), name)
    raise AttributeError(f"module 'qchunk.bench' has no attribute {name!r}")
