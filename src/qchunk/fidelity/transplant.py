"""Map the authors' parameter trees onto qchunk's networks.

Both codebases build the same MLPs (``Dense`` layers, optional ``LayerNorm`` after the activation, a first
layer reading the concatenated inputs in the same order), so a network maps leaf for leaf: ``Dense_i`` ->
``dense_i``, ``LayerNorm_i`` -> ``layer_norm_i``, and the wrapper names below. Shapes are checked; a leaf
left over on either side is an error (the mapping is a bijection, tested).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from qchunk.errors import QchunkError

Tree = dict[str, Any]

_LAYER = re.compile(r"^(Dense|LayerNorm)_(\d+)$")


def mlp_layers(tree: Tree) -> Tree:
    """An authors' ``MLP`` parameter dict (``Dense_i``, ``LayerNorm_i``) as qchunk's
    :class:`~qchunk.networks.MLP` (``dense_i``, ``layer_norm_i``); arrays unchanged (an ensemble keeps its
    leading axis)."""
    out: Tree = {}
    for name, value in tree.items():
        match = _LAYER.match(name)
        if match is None:
            raise QchunkError(f"unexpected MLP entry {name!r} (expected Dense_i / LayerNorm_i)")
        kind = "dense" if match.group(1) == "Dense" else "layer_norm"
        out[f"{kind}_{match.group(2)}"] = {k: np.asarray(v, np.float32) for k, v in value.items()}
    return out


def critic_ensemble(module: Tree) -> Tree:
    """The authors' ``Value`` ensemble (``value_net``, vmapped MLP) as :class:`~qchunk.networks.CriticEnsemble`
    (``critics``)."""
    return {"critics": mlp_layers(_only(module, "value_net"))}


def state_value(module: Tree) -> Tree:
    """The authors' ``Value`` with one member and no action (``value_net``, a plain MLP) as
    :class:`~qchunk.networks.StateValue` (``value``)."""
    return {"value": mlp_layers(_only(module, "value_net"))}


def state_action_ensemble(module: Tree) -> Tree:
    """The QC repo's RLPD critic (``Ensemble`` of ``StateActionValue``: vmapped ``MLP_0`` hidden layers and a
    ``Dense_0`` output head) as :class:`~qchunk.networks.CriticEnsemble` (``critics``; the head is the MLP's
    last layer, ``dense_<number of hidden layers>``)."""
    member = _only(module, "VmapStateActionValue_0")
    if set(member) != {"MLP_0", "Dense_0"}:
        raise QchunkError(f"a StateActionValue has MLP_0 and Dense_0, found {sorted(member)}")
    layers = mlp_layers(member["MLP_0"])
    hidden = sum(1 for name in layers if name.startswith("dense_"))
    layers[f"dense_{hidden}"] = _dense(member["Dense_0"])
    return {"critics": layers}


def vector_field(module: Tree) -> Tree:
    """The authors' ``ActorVectorField`` (``mlp``) as :class:`~qchunk.networks.FlowVelocity` or
    :class:`~qchunk.networks.OneStepPolicy` (``mlp``; the same inputs in the same order)."""
    return {"mlp": mlp_layers(_only(module, "mlp"))}


def noise_predictor(module: Tree) -> Tree:
    """The authors' ``DDPM`` (``FourierFeatures_0`` time features, ``MLP_0`` time encoder, ``MLP_1`` noise MLP) as
    :class:`~qchunk.networks.NoisePredictor` (``time_features``, ``time_mlp``, ``mlp``; the same inputs in the same
    order)."""
    if set(module) != {"FourierFeatures_0", "MLP_0", "MLP_1"}:
        raise QchunkError(f"a DDPM has FourierFeatures_0, MLP_0 and MLP_1, found {sorted(module)}")
    return {"time_features": _dense(module["FourierFeatures_0"]), "time_mlp": mlp_layers(module["MLP_0"]),
            "mlp": mlp_layers(module["MLP_1"])}


def tanh_normal(module: Tree) -> Tree:
    """The authors' QAM-repo ``TanhNormal`` (an ``MLP`` trunk with the activation after its last layer, heads
    ``OutputDenseMean``, ``OutputDenseLogStd``) as :class:`~qchunk.networks.TanhGaussianPolicy`."""
    trunk = [k for k in module if k not in ("OutputDenseMean", "OutputDenseLogStd")]
    if len(trunk) != 1:
        raise QchunkError(f"a TanhNormal has one trunk, found {trunk}")
    return {"trunk": mlp_layers(module[trunk[0]]),
            "mean": _dense(module["OutputDenseMean"]), "log_std": _dense(module["OutputDenseLogStd"])}


def deterministic_actor(module: Tree) -> Tree:
    """The authors' QAM-repo ``Actor`` with a constant std (``actor_net`` trunk, ``mean_net`` head; the mode is
    all ReBRAC uses) as :class:`~qchunk.networks.DeterministicPolicy` (``trunk``, ``mean``)."""
    if set(module) != {"actor_net", "mean_net"}:
        raise QchunkError(f"a constant-std Actor has actor_net and mean_net, found {sorted(module)}")
    return {"trunk": mlp_layers(module["actor_net"]), "mean": _dense(module["mean_net"])}


def log_param(module: Tree, name: str = "log_value") -> np.ndarray:
    """The authors' ``LogParam`` (``log_value``; the QC repo's ``Temperature``: ``name='log_temp'``) as qchunk's
    ``log_temperature`` scalar."""
    return np.asarray(_only(module, name), np.float32)


def _dense(tree: Tree) -> Tree:
    return {k: np.asarray(v, np.float32) for k, v in tree.items()}


def _only(tree: Tree, key: str) -> Any:
    if set(tree) != {key}:
        raise QchunkError(f"expected only {key!r}, found {sorted(tree)}")
    return tree[key]


def leaf_paths(tree: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``{'a/b/kernel': shape}`` of every array in a nested dict."""
    if isinstance(tree, dict):
        out: dict[str, tuple[int, ...]] = {}
        for key, value in tree.items():
            out.update(leaf_paths(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): tuple(np.shape(tree))}


def check_same_structure(mapped: Tree, expected: Any, what: str) -> None:
    """Raise when ``mapped`` (transplanted parameters) and ``expected`` (qchunk's own, e.g. freshly initialised)
    differ in any path or shape: the mapping must cover every leaf exactly once."""
    got, want = leaf_paths(mapped), leaf_paths(expected)
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        shapes = sorted(k for k in set(got) & set(want) if got[k] != want[k])
        raise QchunkError(f"{what}: parameter trees differ (missing {missing}, extra {extra}, shapes {shapes})")
