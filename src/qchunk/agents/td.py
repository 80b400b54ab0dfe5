"""Chunked temporal-difference machinery shared by the flow agents and (later) the SAC/RLPD family.

The batch contract (from the data pipeline) is documented in :mod:`qchunk.agents`; in short, for a
window of ``h`` steps ``rewards[:, -1]`` is the discounted h-step return, ``masks[:, -1]`` is 0 after a
success termination in the window, ``valid[:, -1]`` is 0 when the window crosses an episode end and
``next_observations[:, -1]`` is ``s_{t+h}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import jax
import jax.numpy as jnp

from qchunk.agents.losses import critic_loss

Array = jax.Array
T = TypeVar("T")

__all__ = [
    "aggregate_ensemble",
    "critic_actions",
    "critic_loss",
    "pessimistic_ensemble",
    "polyak_update",
    "scan_updates",
    "td_target",
]


def aggregate_ensemble(qs: Array, how: Literal["mean", "min"]) -> Array:
    """Reduce critic values ``(K, ...)`` over the ensemble axis to ``(...)`` by ``mean`` or ``min``."""
    if how == "mean":
        return jnp.mean(qs, axis=0)
    if how == "min":
        return jnp.min(qs, axis=0)
    raise ValueError(f"unknown ensemble aggregation {how!r}; use 'mean' or 'min'")


def pessimistic_ensemble(qs: Array, rho: float) -> Array:
    """The pessimistic ensemble value ``mean_k Q_k - rho * std_k Q_k`` of critic values ``(K, ...)``, reduced
    over the ensemble axis to ``(...)``; ``std`` is the population standard deviation (divides by K).
    ``rho = 0`` is the ensemble mean (the QAM paper's TD target uses ``rho = 0.5``, 0 on humanoidmaze)."""
    return jnp.mean(qs, axis=0) - rho * jnp.std(qs, axis=0)


def td_target(rewards: Array, masks: Array, next_q: Array, discount: float) -> Array:
    """The h-step backup ``R^h + gamma**h * mask * Q'`` with ``h = rewards.shape[1]``.

    For a chunk critic this is unbiased; for single-action critics fed an h-step window (the ``-n``
    baselines) it is the usual biased n-step return. The discount power is the *window* length h,
    whatever the critic reads.

    Args:
        rewards: ``(B, h)`` cumulative discounted rewards; only ``rewards[:, -1]`` is used.
        masks: ``(B, h)`` 0 after a success termination inside the window; only ``masks[:, -1]``.
        next_q: ``(B,)`` ensemble-aggregated target-critic value at ``s_{t+h}`` of the policy's action.
        discount: gamma.
    Returns:
        ``(B,)`` targets (no gradient).
    """
    horizon = rewards.shape[1]
    target = rewards[:, -1] + (discount**horizon) * masks[:, -1] * next_q
    return jax.lax.stop_gradient(target)


def critic_actions(actions: Array, chunked: bool) -> Array:
    """What a critic reads from a data chunk ``(B, h, A)``: the flattened chunk ``(B, h*A)`` when
    ``chunked``, else the first action ``(B, A)`` (the biased n-step baselines)."""
    if chunked:
        return actions.reshape(actions.shape[0], -1)
    return actions[:, 0]


def polyak_update(online: T, target: T, tau: float) -> T:
    """``target <- tau * online + (1 - tau) * target`` leaf by leaf."""
    return jax.tree_util.tree_map(lambda p, t: tau * p + (1.0 - tau) * t, online, target)


def scan_updates(
    update: Callable[[T, dict[str, Array]], tuple[T, dict[str, Array]]],
    state: T,
    batches: dict[str, Array],
) -> tuple[T, dict[str, Array]]:
    """Apply ``update`` once per batch of ``batches`` (arrays stacked on a leading axis ``U``) inside
    one ``lax.scan`` — the UTD > 1 step, with no host round-trip between updates.

    Returns the final state and the metrics of every update, stacked: each entry has shape ``(U,)``
    (``info[k][-1]`` is the last update's value, ``info[k].mean()`` the average).
    """

    def body(carry: Any, batch: dict[str, Array]) -> tuple[Any, dict[str, Array]]:
        return update(carry, batch)

    return jax.lax.scan(body, state, batches)
