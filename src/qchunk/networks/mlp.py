"""Multi-layer perceptrons whose first layer reads several inputs without concatenating them.

Every network in :mod:`qchunk.networks` is an :class:`MLP` applied to a tuple of inputs, e.g.
``(observation, flattened chunk)`` for a critic or ``(observation, x_u, u)`` for a flow velocity field.
Mathematically the first layer is ``Dense(concat(inputs))``: it owns ONE kernel of shape
``(sum of input widths, features)``, initialised exactly as a dense layer on the concatenation would be.
It is evaluated as a sum of per-input products, ``sum_i inputs[i] @ kernel[rows_i]``, so inputs only
need *broadcastable* leading shapes. Passing an observation of shape ``(B, 1, obs_dim)`` next to ``N``
candidate chunks ``(B, N, h*A)`` projects each observation once instead of ``N`` times, and under
``jit`` the same observation projection is computed once for all ``T`` Euler steps of a flow (XLA
merges identical products). The numbers are those of the concatenated layer up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Initializer = Callable[..., Array]


def default_init(scale: float = 1.0) -> Initializer:
    """Kernel initialiser of all qchunk networks: variance scaling, fan-average, uniform — for a dense
    kernel ``(fan_in, fan_out)``, ``U(-l, l)`` with ``l = sqrt(6 * scale / (fan_in + fan_out))`` (Glorot
    uniform for ``scale=1``), the initialiser of the Q-chunking / FQL reference networks. Biases start
    at zero.

    Same distribution as ``nn.initializers.variance_scaling(scale, "fan_avg", "uniform")``; the numbers
    are drawn as one flat vector, which XLA compiles several times faster than a 2-D draw.
    """

    def init(key: Array, shape: Sequence[int], dtype: jnp.dtype = jnp.float32) -> Array:
        receptive = math.prod(shape[:-2])  # 1 for dense kernels
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = math.sqrt(6.0 * scale / (fan_in + fan_out))
        flat = jax.random.uniform(key, (math.prod(shape),), dtype, -limit, limit)
        return flat.reshape(tuple(shape))

    return init


class MultiInputDense(nn.Module):
    """A dense layer on the concatenation of its inputs, computed without materialising it.

    Parameters ``kernel (sum_i d_i, features)`` and ``bias (features,)`` have the shapes (and the
    initialisation) of ``nn.Dense`` applied to ``concat(inputs, -1)``. Inputs of width 1 (e.g. a flow
    time) are multiplied in rather than contracted.

    Call: ``inputs`` is a sequence of arrays ``(..._i, d_i)`` whose leading shapes broadcast together;
    returns ``(broadcast(..._i), features)``.
    """

    features: int
    """Output width."""
    kernel_init: Initializer = default_init()
    """Initialiser of the (concatenated) kernel."""

    @nn.compact
    def __call__(self, inputs: Sequence[Array]) -> Array:
        widths = [int(x.shape[-1]) for x in inputs]
        kernel = self.param("kernel", self.kernel_init, (sum(widths), self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        y = None
        start = 0
        for x, width in zip(inputs, widths, strict=True):
            rows = kernel[start : start + width]
            start += width
            part = x * rows[0] if width == 1 else x @ rows
            y = part if y is None else y + part
        return y + bias


class MLP(nn.Module):
    """Dense layers with an activation (and optional LayerNorm) between them.

    Layer ``i`` is ``Dense(hidden_dims[i])``; every layer but the last (or every layer, with
    ``activate_final``) is followed by ``activation`` and then, if ``layer_norm``, by LayerNorm —
    the order of the Q-chunking / FQL reference networks. With ``norm_before_activation`` the LayerNorm
    comes first (``activation(LayerNorm(Dense(x)))``, the order of the RLPD reference networks). The last
    entry of ``hidden_dims`` is the output width.

    Call: ``inputs`` — one array or several arrays ``(..._i, d_i)`` with broadcastable leading shapes
    (see :class:`MultiInputDense`); returns ``(broadcast(..._i), hidden_dims[-1])``.
    """

    hidden_dims: Sequence[int]
    """Widths of all layers, the output layer included, e.g. ``(512, 512, 512, 512, 1)``."""
    activation: Callable[[Array], Array] = nn.gelu
    """Nonlinearity between layers (default: GELU, tanh approximation, as the reference code)."""
    activate_final: bool = False
    """Apply the activation (and LayerNorm) after the last layer too."""
    layer_norm: bool = False
    """LayerNorm after each activation (before it with ``norm_before_activation``)."""
    norm_before_activation: bool = False
    """Apply the LayerNorm between the dense layer and the activation instead of after the activation
    (the RLPD networks' order; no effect without ``layer_norm``)."""
    kernel_init: Initializer = default_init()
    """Kernel initialiser of every layer."""

    @nn.compact
    def __call__(self, *inputs: Array) -> Array:
        if not inputs:
            raise ValueError("MLP needs at least one input")
        n = len(self.hidden_dims)
        x = None
        for i, width in enumerate(self.hidden_dims):
            if i == 0:
                x = MultiInputDense(width, kernel_init=self.kernel_init, name="dense_0")(inputs)
            else:
                x = nn.Dense(width, kernel_init=self.kernel_init, name=f"dense_{i}")(x)
            if i + 1 < n or self.activate_final:
                if self.layer_norm and self.norm_before_activation:
                    x = nn.LayerNorm(name=f"layer_norm_{i}")(x)
                x = self.activation(x)
                if self.layer_norm and not self.norm_before_activation:
                    x = nn.LayerNorm(name=f"layer_norm_{i}")(x)
        return x


def concat_inputs(*inputs: Array) -> Array:
    """Broadcast ``inputs`` to common leading dims and concatenate on the last axis (reference helper
    for tests: ``MLP(...)(*inputs)`` equals a plain MLP on ``concat_inputs(*inputs)``)."""
    lead = jnp.broadcast_shapes(*(x.shape[:-1] for x in inputs))
    return jnp.concatenate([jnp.broadcast_to(x, (*lead, x.shape[-1])) for x in inputs], axis=-1)
