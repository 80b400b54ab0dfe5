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


def expectile_loss(diff: Array, expectile: float, weights: Array | None = None) -> Array:
    """Asymmetric squared loss of IQL's expectile regression: ``mean_b w_b |expectile - 1[diff_b < 0]| diff_b**2``.

    Minimised over ``v`` by ``diff = q - v``, it makes ``v`` the ``expectile``-expectile of ``q`` (0.5: the
    mean; towards 1: the maximum). A zero difference counts as positive (weight ``expectile``), as the reference.

    Args:
        diff: ``(B,)`` differences ``q - v`` (gradient flows through ``v`` only if the caller holds ``q`` fixed).
        expectile: kappa in (0, 1).
        weights: optional ``(B,)`` per-sample weights (None: all 1).
    """
    weight = jnp.where(diff >= 0, expectile, 1.0 - expectile)
    per_sample = weight * jnp.square(diff)
    return jnp.mean(per_sample if weights is None else weights * per_sample)


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
                       weighting: Literal["step", "chunk"] = "step", sample_weights: Array | None = None) -> Array:
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
        sample_weights: optional ``(B,)`` per-chunk weights (treated as given; advantage-weighted flow matching,
            FAWAC), multiplied into each chunk's term; None: all 1.
    """
    per_step = jnp.mean(jnp.square(velocity - target), axis=-1)  # (B, h)
    if sample_weights is not None:
        per_step = sample_weights[:, None] * per_step
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


def q_maximisation_loss(q: Array, normalize: bool = False, eps: float = 1e-6) -> Array:
    """Actor term ``-mean_b Q(s_b, mu(s_b, z_b))``.

    With ``normalize`` the term is divided by ``stop_gradient(mean_b |Q| + eps)`` (FQL's optional
    ``normalize_q_loss``, off in the Q-chunking paper's runs, so ``alpha`` trades off against raw Q; ReBRAC's
    actor always, with ``eps = 0`` as the QAM release).

    Args:
        q: ``(B,)`` ensemble-aggregated critic values of the policy's (clipped) actions.
        normalize: divide by the mean absolute Q (no gradient through the scale).
        eps: added to the scale (FQL's 1e-6).
    """
    loss = -jnp.mean(q)
    if normalize:
        loss = loss / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + eps)
    return loss


def squared_bc_loss(actions: Array, data: Array, weights: Array) -> Array:
    """ReBRAC's behaviour-cloning penalty ``mean_b weights[b] * sum_p (actions - data)[b, p]**2``: the squared
    distance of the policy's output from the data chunk (or first action), summed over its numbers.

    Args:
        actions: ``(B, P)`` the policy's outputs (with gradient).
        data: ``(B, P)`` the flattened data chunks or first actions.
        weights: ``(B,)`` per-sample weights, ``valid[:, -1]`` (a window crossing an episode end dropped).
    """
    return jnp.mean(weights * jnp.sum(jnp.square(actions - data), axis=-1))


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


def dropped_as_one(per_sample: Array, valid: Array) -> Array:
    """``mean_b (per_sample[b] if valid[b] else 1)``: the QAM authors' diffusion losses weight a sample by raising
    its loss to the power ``valid`` (0 or 1), so a chunk whose window crosses an episode end adds the constant 1
    (no gradient) and the mean stays over all ``B``. The gradient is that of dropping the chunk.

    Args:
        per_sample: ``(B,)`` per-sample losses; valid: ``(B,)`` ``valid[:, -1]`` of the batch.
    """
    return jnp.mean(jnp.where(valid > 0, per_sample, 1.0))


def denoising_loss(eps_pred: Array, noise: Array, valid: Array) -> Array:
    """The DDPM behaviour-cloning loss ``mean_b [mean_p (eps - eps_pred)**2]`` (invalid chunks as
    :func:`dropped_as_one`).

    Args:
        eps_pred: ``(B, P)`` the network's noise prediction at the noised data; noise: ``(B, P)`` the noise ``eps``.
        valid: ``(B,)`` ``valid[:, -1]``.
    """
    return dropped_as_one(jnp.mean(jnp.square(noise - eps_pred), axis=-1), valid)


def score_matching_loss(eps_pred: Array, q_grad: Array, inv_temp: float, valid: Array) -> Array:
    """Q-score matching (Psenka et al. 2024): the noise prediction regressed onto the scaled action-gradient of
    the critic, ``mean_b [mean_p (-inv_temp * grad_a Q - eps_pred)**2]`` (invalid chunks as
    :func:`dropped_as_one`).

    Args:
        eps_pred: ``(B, P)`` the noise prediction at the noised data chunks ``x_t``.
        q_grad: ``(B, P)`` ``grad_a mean_k Q_k(s, a)`` at ``a = x_t`` (a constant).
        inv_temp: the inverse temperature; valid: ``(B,)`` ``valid[:, -1]``.
    """
    target = -inv_temp * jax.lax.stop_gradient(q_grad)
    return dropped_as_one(jnp.mean(jnp.square(target - eps_pred), axis=-1), valid)


def diffusion_actor_critic_loss(eps_pred: Array, q_grad: Array, noise_scale: Array, valid: Array) -> Array:
    """Diffusion actor-critic (Fang et al. 2025): ``mean_b [mean_p sqrt(1 - alpha_hat_t) grad_a Q * eps_pred]``,
    whose gradient moves the predicted noise against the critic's action-gradient (invalid chunks as
    :func:`dropped_as_one`).

    Args:
        eps_pred: ``(B, P)`` the noise prediction at the noised data chunks ``x_t``.
        q_grad: ``(B, P)`` ``grad_a mean_k Q_k(s, a)`` at ``a = x_t`` (a constant).
        noise_scale: ``(B, 1)`` ``sqrt(1 - alpha_hat_t)``; valid: ``(B,)`` ``valid[:, -1]``.
    """
    guided = noise_scale * jax.lax.stop_gradient(q_grad) * eps_pred
    return dropped_as_one(jnp.mean(guided, axis=-1), valid)


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
