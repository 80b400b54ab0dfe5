"""Networks: MLPs, the critic ensemble, the state value, the flow velocity field, one-step and tanh-Gaussian policies.

All modules take their inputs separately (state, action or chunk, time) and accept broadcastable
leading shapes; see :mod:`qchunk.networks.mlp` for why.
"""

from qchunk.networks.critic import CriticEnsemble, StateValue
from qchunk.networks.flow import FlowVelocity, euler_integrate
from qchunk.networks.gaussian import (
    TanhGaussianPolicy,
    tanh_gaussian_from_noise,
    tanh_gaussian_log_prob,
    tanh_gaussian_sample,
)
from qchunk.networks.mlp import MLP, MultiInputDense, concat_inputs, default_init
from qchunk.networks.policy import OneStepPolicy

__all__ = [
    "MLP",
    "CriticEnsemble",
    "FlowVelocity",
    "MultiInputDense",
    "OneStepPolicy",
    "StateValue",
    "TanhGaussianPolicy",
    "concat_inputs",
    "default_init",
    "euler_integrate",
    "tanh_gaussian_from_noise",
    "tanh_gaussian_log_prob",
    "tanh_gaussian_sample",
]
