"""Discrete diffusion (DDPM) over policy outputs: the noise schedules, the forward noising and the reverse sampler.

A schedule of ``T`` steps is the variances ``beta_1 .. beta_T``; with ``alpha_t = 1 - beta_t`` and
``alpha_hat_t = prod_{s<=t} alpha_s`` the forward process is ``x_t = sqrt(alpha_hat_t) x_0 + sqrt(1 - alpha_hat_t)
eps``. :class:`DiffusionSchedule` holds the three arrays with a step 0 prepended (``beta_0 = 0``, so
``alpha_hat_0 = 1``) and is indexed by the integer step ``t`` in ``1 .. T``.

:func:`ddpm_sample` runs the reverse chain of a noise-prediction network ``eps(x_t, t)`` from ``x_T`` to ``x_0``
as the QAM authors' ``agents/dcgql.py`` does (its two clipping switches included). The diffusion policies of
:mod:`qchunk.agents.diffusion_agent` use both; the schedules are tested against their closed forms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
BetaSchedule = Literal["vp", "cosine", "linear"]
BETA_SCHEDULES: tuple[str, ...] = ("vp", "cosine", "linear")
"""The schedules :func:`beta_schedule` knows."""


def beta_schedule(kind: BetaSchedule, steps: int) -> np.ndarray:
    """The variances ``beta_1 .. beta_T`` (``(T,)`` float64) of a ``T = steps`` schedule:

    * ``vp``: the discretised variance-preserving SDE with ``b_min = 0.1``, ``b_max = 10``:
      ``beta_t = 1 - exp(-b_min / T - (b_max - b_min) (2t - 1) / (2 T^2))``;
    * ``cosine`` (Nichol & Dhariwal 2021, ``s = 0.008``): ``alpha_hat(t) = cos^2((t/T + s) / (1 + s) pi/2)``
      normalised to ``alpha_hat(0) = 1``, ``beta_t = 1 - alpha_hat(t) / alpha_hat(t - 1)`` clipped to [0, 0.999];
    * ``linear``: ``T`` evenly spaced values from 1e-4 to 2e-2.
    """
    if steps < 1:
        raise ValueError(f"a diffusion schedule needs at least one step, got {steps}")
    t = np.arange(1, steps + 1, dtype=np.float64)
    if kind == "vp":
        b_min, b_max = 0.1, 10.0
        return 1.0 - np.exp(-b_min / steps - 0.5 * (b_max - b_min) * (2.0 * t - 1.0) / steps**2)
    if kind == "cosine":
        s = 0.008
        hat = np.cos((np.arange(steps + 1) / steps + s) / (1.0 + s) * math.pi * 0.5) ** 2
        hat = hat / hat[0]
        return np.clip(1.0 - hat[1:] / hat[:-1], 0.0, 0.999)
    if kind == "linear":
        return np.linspace(1e-4, 2e-2, steps)
    raise ValueError(f"unknown beta schedule {kind!r}; choose one of: {', '.join(BETA_SCHEDULES)}")


class DiffusionSchedule(NamedTuple):
    """A ``T``-step schedule with step 0 prepended: each array is ``(T + 1,)`` float32, indexed by ``t``."""

    betas: np.ndarray
    """``beta_t`` (``beta_0 = 0``)."""
    alphas: np.ndarray
    """``alpha_t = 1 - beta_t``."""
    alpha_hats: np.ndarray
    """``alpha_hat_t = prod_{s<=t} alpha_s`` (``alpha_hat_0 = 1``)."""

    @property
    def steps(self) -> int:
        """``T``, the number of diffusion steps."""
        return len(self.betas) - 1


@functools.lru_cache(maxsize=32)
def diffusion_schedule(kind: BetaSchedule, steps: int) -> DiffusionSchedule:
    """The :class:`DiffusionSchedule` of :func:`beta_schedule` ``(kind, steps)`` (products taken in float32, as
    the authors' code does)."""
    betas = np.concatenate([[0.0], beta_schedule(kind, steps)]).astype(np.float32)
    alphas = (np.float32(1.0) - betas).astype(np.float32)
    return DiffusionSchedule(betas, alphas, np.cumprod(alphas, dtype=np.float32))


def noise_actions(schedule: DiffusionSchedule, actions: Array, noise: Array, t: Array) -> tuple[Array, Array]:
    """The forward process at integer steps ``t``: ``x_t = sqrt(alpha_hat_t) x_0 + sqrt(1 - alpha_hat_t) eps``.

    Args:
        actions: ``(B, P)`` the clean policy outputs ``x_0``; noise: ``(B, P)`` ``eps ~ N(0, I)``;
        t: ``(B,)`` integer steps in ``1 .. T``.
    Returns:
        ``(x_t, sqrt(1 - alpha_hat_t))``: ``(B, P)`` and the noise scale ``(B, 1)``.
    """
    alpha_hat = jnp.asarray(schedule.alpha_hats)[t][:, None]
    scale = jnp.sqrt(1.0 - alpha_hat)
    return jnp.sqrt(alpha_hat) * actions + scale * noise, scale


class SamplerNoise(NamedTuple):
    """The random numbers of one run of :func:`ddpm_sample` (``B`` states, width ``P``, ``T`` steps)."""

    start: Array
    """``(..., B, P)`` the chain's start ``x_T ~ N(0, I)``."""
    steps: Array
    """``(T - 1, ..., B, P)`` the noise added after the steps ``t = T .. 2`` (the last step adds none)."""


def ddpm_sample(eps: Callable[[Array, Array], Array], schedule: DiffusionSchedule, noise: SamplerNoise,
                clip_before: bool, clip_after: bool) -> Array:
    """The reverse chain from ``x_T = noise.start`` to ``x_0``, for ``t = T .. 1``:

    ``x0_hat = (x_t - sqrt(1 - alpha_hat_t) eps(x_t, t)) / sqrt(alpha_hat_t)`` (the one-step estimate of ``x_0``);
    with ``clip_before`` it is clipped to [-1, 1] and ``x_{t-1}`` is the posterior mean
    ``(sqrt(alpha_hat_{t-1}) beta_t x0_hat + sqrt(alpha_t) (1 - alpha_hat_{t-1}) x_t) / (1 - alpha_hat_t)``;
    without it ``x_{t-1} = x0_hat`` (the authors' code jumps to the estimate). For ``t > 1`` then
    ``x_{t-1} += sqrt(beta_t) z_t``; with ``clip_after`` ``x_{t-1}`` is clipped to [-1, 1] after every step.

    Args:
        eps: the noise prediction ``(x (B, P), t (1,) float) -> (B, P)``.
        noise: the chain's draws (:class:`SamplerNoise`).
    Returns:
        ``(B, P)`` the chain's end ``x_0`` (in [-1, 1] only when a clip applies).
    """
    x = noise.start
    for i, t in enumerate(range(schedule.steps, 0, -1)):
        hat, hat_prev, alpha = (float(v) for v in (schedule.alpha_hats[t], schedule.alpha_hats[t - 1],
                                                   schedule.alphas[t]))
        x0_hat = 1.0 / math.sqrt(hat) * (x - math.sqrt(1.0 - hat) * eps(x, jnp.full((1,), t, jnp.float32)))
        if clip_before:
            x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
            x = (math.sqrt(hat_prev) * (1.0 - alpha) * x0_hat + math.sqrt(alpha) * (1.0 - hat_prev) * x) / (1.0 - hat)
        else:
            x = x0_hat
        if t > 1:
            x = x + math.sqrt(1.0 - alpha) * noise.steps[i]
        if clip_after:
            x = jnp.clip(x, -1.0, 1.0)
    return x


__all__ = ["BETA_SCHEDULES", "DiffusionSchedule", "SamplerNoise", "beta_schedule", "ddpm_sample",
           "diffusion_schedule", "noise_actions"]
