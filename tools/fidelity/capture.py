"""Capture every random draw a piece of JAX code makes, in call order.

The authors' code splits its keys differently from qchunk, so the fidelity fixtures record the *values*
it draws, not its keys: while a :class:`DrawCapture` is active, the public samplers of ``jax.random``
(``normal``, ``uniform``, ...) are wrapped, and each call appends ``(sampler name, value)``. The code must
run eagerly (``jax.disable_jit()``) so that the draws are concrete arrays. Runs in the authors' environment;
imports nothing from qchunk.
"""

from __future__ import annotations

import jax
import numpy as np

SAMPLERS = ("normal", "uniform", "truncated_normal", "bernoulli", "categorical", "randint", "gumbel", "laplace",
            "beta", "gamma", "choice", "permutation", "exponential", "logistic")


class DrawCapture:
    """Context manager: ``with DrawCapture() as draws: ...`` leaves ``draws.calls``, a list of
    ``(sampler, np.ndarray)`` in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, np.ndarray]] = []
        self.traced = 0
        """Calls on traced values (shape evaluations), not recorded."""
        self._saved: dict[str, object] = {}

    def _wrap(self, name: str, sampler):
        def recorded(*args, **kwargs):
            value = sampler(*args, **kwargs)
            if isinstance(value, jax.core.Tracer):
                # flax checks parameter shapes by tracing their initialisers (``jax.eval_shape``): no number
                # is drawn there. A real draw under vmap/scan would be missed too; it is counted, and the
                # fidelity test, which replays the recorded draws, fails on a missing one.
                self.traced += 1
            else:
                self.calls.append((name, np.asarray(value)))
            return value

        return recorded

    def __enter__(self) -> DrawCapture:
        for name in SAMPLERS:
            sampler = getattr(jax.random, name, None)
            if sampler is not None:
                self._saved[name] = sampler
                setattr(jax.random, name, self._wrap(name, sampler))
        return self

    def __exit__(self, *exc) -> None:
        for name, sampler in self._saved.items():
            setattr(jax.random, name, sampler)
        self._saved.clear()
