"""Networks: MLPs, the critic ensemble, the state value, the flow velocity field, a diffusion noise predictor,
one-step and tanh-Gaussian policies.

All modules take their inputs separately (state, action or chunk, time) and accept broadcastable
leading shapes; see :mod:`qchunk.networks.mlp` for why.
"""

from qchunk.networks.critic import CriticEnsemble, StateValue
from qchunk.networks.diffusion import FourierTimeFeatures, NoisePredictor, mish
from qchunk.networks.flow import FlowVelocity, euler_integrate
from qchunk.networks.gaussian import (
    TanhGaussianPolicy,
    tanh_gaussian_from_noise,
    tanh_gaussian_log_prob,
    tanh_gaussian_sample,
)
from qchunk.networks.mlp import MLP, MultiInputDense, concat_inputs, default_init
from qchunk.networks.policy import DeterministicPolicy, OneStepPolicy

__all__ = [
    "MLP",
    "CriticEnsemble",
    "DeterministicPolicy",
    "FlowVelocity",
    "FourierTimeFeatures",
    "MultiInputDense",
    "NoisePredictor",
    "OneStepPolicy",
    "StateValue",
    "TanhGaussianPolicy",
    "concat_inputs",
    "default_init",
    "euler_integrate",
    "mish",
    "tanh_gaussian_from_noise",
    "tanh_gaussian_log_prob",
    "tanh_gaussian_sample",
]
