"""Pure loss functions of the flow agents (and reusable by other agents), with shapes.

Conventions: ``B`` batch, ``K`` critic ensemble size, ``h`` steps of a policy output (the chunk length
for chunked policies, 1 for single-action ones), ``A`` action dimension, ``P`` the flattened width
(``h*A`` or ``A``). Every function returns a scalar ``float32``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

Array = jax.Array


def critic_loss(q: Array, target: Array, weights: Array) -> Array:
    """Weighted squared TD error, averaged over ensemble members and the batch.

    ``mean_{k,b} weights[b] * (q[k, b] - target[b])**2``. Like the reference code this divides by
    ``K*B`` (not by the weight sum): a chunk with weight 0 (its last step lies past an episode end)
    contributes nothing and the others keep their usual scale.

    Args:
        q: ``(K, B)`` online critic values of the data chunks (or first actions).
        target: ``(B,)`` TD targets; treated as constants (the caller computes them without gradient).
        weights: ``(B,)`` per-sample weights, ``valid[:, -1]`` for the chunked backup.
    """
    target = jax.lax.stop_gradient(target)
    return jnp.mean(weights[None, :] * jnp.square(q - target[None, :]))


def flow_interpolant(noise: Array, actions: Array, times: Array) -> tuple[Array, Array]:
    """The straight (rectified-flow) path between noise and data and its constant velocity.

    ``x_u = (1 - u) * x0 + u * x1`` and ``target = x1 - x0`` with ``x0 = noise``, ``x1 = actions``.

    Args:
        noise: ``(B, P)`` samples of N(0, I).
        actions: ``(B, P)`` data actions or flattened chunks.
        times: ``(B, 1)`` flow times ``u`` in [0, 1].
    Returns:
        ``(x_u, target)``, both ``(B, P)``.
    """
    return (1.0 - times) * noise + times * actions, actions - noise


def flow_matching_loss(velocity: Array, target: Array, valid: Array | None = None,
                       weighting: Literal["step", "chunk"] = "step") -> Array:
    """Flow-matching behaviour-cloning loss: the squared velocity error, with the steps past an episode end
    weighted as each paper's code weights them.

    * ``step`` (the Q-chunking code, ``acfql.py``): ``mean_{b,j,a} valid[b,j] * (v - target)[b,j,a]**2``,
      each step of a chunk that lies past an episode end zeroed, the mean over all ``B*h*A`` numbers;
    * ``chunk`` (the QAM code, every agent of it): ``mean_b valid[b,-1] * mean_{j,a} (v - target)[b,j,a]**2``,
      a chunk whose window crosses an episode end dropped whole (``valid`` of its window's last step).

    Args:
        velocity: ``(B, h, A)`` predicted velocities ``v(s, x_u, u)``.
        target: ``(B, h, A)`` path velocities ``x1 - x0`` (see :func:`flow_interpolant`).
        valid: ``(B, H)`` the batch's ``valid`` (the whole window; ``step`` reads its first ``h`` steps,
            ``chunk`` its last), or None (all 1).
        weighting: ``step`` or ``chunk``, above.
    """
    per_step = jnp.mean(jnp.square(velocity - target), axis=-1)  # (B, h)
    if valid is None:
        return jnp.mean(per_step)
    if weighting == "chunk":
        return jnp.mean(valid[:, -1] * jnp.mean(per_step, axis=-1))
    return jnp.mean(valid[:, : per_step.shape[1]] * per_step)


def distillation_loss(actions: Array, target_actions: Array) -> Array:
    """FQL distillation: ``mean_{b,p} (mu(s, z) - flow(s, z))**2`` (mean over batch AND dimensions).

    Args:
        actions: ``(B, P)`` one-step policy outputs ``mu(s, z)`` (unclipped, with gradient).
        target_actions: ``(B, P)`` the BC flow's Euler solution from the SAME noise ``z`` (clipped to
            [-1, 1]); treated as a constant.
    """
    target_actions = jax.lax.stop_gradient(target_actions)
    return jnp.mean(jnp.square(actions - target_actions))


def q_maximisation_loss(q: Array, normalize: bool = False) -> Array:
    """Actor term ``-mean_b Q(s_b, mu(s_b, z_b))``.

    With ``normalize`` the term is divided by ``stop_gradient(mean_b |Q|)`` (FQL's optional
    ``normalize_q_loss``; off in the Q-chunking paper's runs, so ``alpha`` trades off against raw Q).

    Args:
        q: ``(B,)`` ensemble-aggregated critic values of the policy's (clipped) actions.
        normalize: divide by the mean absolute Q (no gradient through the scale).
    """
    loss = -jnp.mean(q)
    if normalize:
        loss = loss / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + 1e-6)
    return loss


def sac_actor_loss(log_prob: Array, q: Array, temperature: Array) -> Array:
    """SAC actor term ``mean_b [temperature * log pi(a_b|s_b) - Q(s_b, a_b)]``.

    Args:
        log_prob: ``(B,)`` log-density of the reparameterised policy samples (with gradient).
        q: ``(B,)`` ensemble-mean critic values of those samples (critic parameters held fixed).
        temperature: scalar entropy temperature (held fixed).
    """
    return jnp.mean(jax.lax.stop_gradient(temperature) * log_prob - q)


def temperature_loss(log_temperature: Array, log_prob: Array, target_entropy: float) -> Array:
    """Automatic entropy tuning: ``exp(log_temperature) * mean_b (-log_prob_b - target_entropy)``.

    Its gradient raises the temperature when the policy entropy ``-log_prob`` is below the target and
    lowers it when above.

    Args:
        log_temperature: scalar, the trained parameter.
        log_prob: ``(B,)`` log-densities of policy samples (treated as constants).
        target_entropy: the entropy the policy should keep (e.g. ``-0.5 * h * A``).
    """
    entropy = -jax.lax.stop_gradient(log_prob)
    return jnp.exp(log_temperature) * jnp.mean(entropy - target_entropy)


def behaviour_log_likelihood(step_log_probs: Array, step_weights: Array) -> Array:
    """Log-likelihood of the data chunks under the policy, over the steps inside the episode:
    ``mean_b sum_{j,a} w[b,j] * step_log_probs[b,j,a]``.

    Args:
        step_log_probs: ``(B, h, A)`` per-dimension log-densities of the data actions.
        step_weights: ``(B, h)`` the batch's ``valid`` (0 for steps past an episode end).
    """
    return jnp.mean(jnp.sum(step_weights * jnp.sum(step_log_probs, axis=-1), axis=-1))


def linex_loss(pred: Array, target: Array, weights: Array, inv_temp: float, clip: float) -> Array:
    """The LinEx (Itakura-Saito) distillation of ``exp(inv_temp * Q)``, weighted and averaged over all entries.

    With ``d = inv_temp * (target - pred)``: ``exp(d) + inv_temp * pred`` where ``d <= clip``, and ``d`` itself
    where ``d > clip`` (the exponential cut off for stability, as the reference code). Its minimiser in ``pred``
    is ``target`` (``d = 0``): ``d/dpred = inv_temp * (1 - exp(d))``; over noisy inputs it fits
    ``log E[exp(inv_temp * target)] / inv_temp``, not the mean.

    Args:
        pred: ``(K, B)`` the time-conditioned critics at noisy actions (with gradient).
        target: ``(K, B)`` the target critics at the clean actions (constants).
        weights: ``(B,)`` per-sample weights (``valid[:, -1]``).
    """
    delta = inv_temp * (jax.lax.stop_gradient(target) - pred)
    above = delta > clip
    terms = jnp.where(above, delta, jnp.exp(jnp.where(above, clip, delta)) + inv_temp * pred)
    return jnp.mean(terms * weights[None, :])
