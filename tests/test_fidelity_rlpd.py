"""The RLPD family's parameter mapping (qchunk.fidelity.rlpd_replay): the authors' critic, actor and temperature
trees of the QC repo (agents/acrlpd.py, rlpd_networks) and the QAM repo (agents/rlpd.py, utils/networks.py) map
leaf for leaf onto qchunk's SAC networks, which compute what plain numpy layers compute on the authors' weights.
The update itself is compared by tests/test_fidelity.py on the recorded fixtures."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from qchunk.agents import create_agent
from qchunk.errors import QchunkError
from qchunk.fidelity import load_fixture
from qchunk.fidelity.fixture import FIXTURE_DIR
from qchunk.fidelity.replay import relative_error
from qchunk.fidelity.rlpd_replay import rlpd_config, rlpd_params, rlpd_targets
from qchunk.fidelity.transplant import check_same_structure, state_action_ensemble


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def relu(x):
    return np.maximum(x, 0.0)


def layer_norm(x, p):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6) * p["scale"] + p["bias"]


def hidden(layers, x, n, activation, norm, before):
    """``n`` hidden layers of the authors' MLP, every one activated; LayerNorm before or after the activation."""
    for i in range(n):
        x = x @ layers[f"Dense_{i}"]["kernel"] + layers[f"Dense_{i}"]["bias"]
        if norm and before:
            x = layer_norm(x, layers[f"LayerNorm_{i}"])
        x = activation(x)
        if norm and not before:
            x = layer_norm(x, layers[f"LayerNorm_{i}"])
    return x


def dense(p, x):
    return x @ p["kernel"] + p["bias"]


@pytest.mark.parametrize(("case", "activation", "before"), [("rlpd-ac", relu, True), ("qam-rlpd-ac", gelu, False)])
def test_rlpd_transplant_is_a_bijection_with_equal_forward_passes(case, activation, before):
    fixture = load_fixture(FIXTURE_DIR / f"{case}.npz")
    meta, repo = fixture.meta, fixture.meta["repo"]
    config = rlpd_config(fixture.config, meta["horizon"], meta["action_dim"], repo)
    assert config.networks == ("qam" if repo == "qam" else "rlpd")
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params = rlpd_params(authors, repo)
    check_same_structure(params, agent.params, case)
    check_same_structure(rlpd_targets(authors, repo), agent.target_params, case)
    # the recorder's two warm-up updates move it by about two Adam steps (lr 3e-4 each)
    assert float(params["log_temperature"]) == pytest.approx(np.log(fixture.config["init_temp"]), abs=1e-3)

    obs = fixture.batch()["observations"].astype(np.float64)
    chunk = fixture.batch()["actions"].reshape(obs.shape[0], -1).astype(np.float64)
    n = len(config.critic_hidden_dims)
    critic = authors["modules_critic"]
    qs = []
    for k in range(config.num_critics):
        member = jax.tree_util.tree_map(lambda a, k=k: np.asarray(a[k], np.float64), critic)
        inputs = np.concatenate([obs, chunk], -1)
        if repo == "qam":  # Value: one MLP whose last Dense is the output
            layers = member["value_net"]
            qs.append(dense(layers[f"Dense_{n}"], hidden(layers, inputs, n, activation, True, before))[:, 0])
        else:  # StateActionValue: MLP_0 (activate_final) and a Dense_0 head
            layers = member["VmapStateActionValue_0"]
            qs.append(dense(layers["Dense_0"], hidden(layers["MLP_0"], inputs, n, activation, True, before))[:, 0])
    got_q = agent.networks.critic.apply({"params": params["critic"]}, obs.astype(np.float32),
                                        chunk.astype(np.float32))
    assert relative_error(got_q, np.stack(qs)) < 1e-5

    actor = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), authors["modules_actor"])
    trunk = hidden(actor["MLP_0"], obs, len(config.actor_hidden_dims), activation, False, before)
    mean, log_std = agent.networks.actor.apply({"params": params["actor"]}, obs.astype(np.float32))
    assert relative_error(mean, dense(actor["OutputDenseMean"], trunk)) < 1e-5
    assert relative_error(log_std, np.clip(dense(actor["OutputDenseLogStd"], trunk), -20, 2)) < 1e-5


def test_state_action_ensemble_refuses_another_layout():
    with pytest.raises(QchunkError, match="MLP_0 and Dense_0"):
        state_action_ensemble({"VmapStateActionValue_0": {"MLP_0": {}, "Dense_1": {}}})
    with pytest.raises(QchunkError, match="expected only"):
        state_action_ensemble({"Ensemble_0": {}})
