"""Presets: every agent at every preset builds, trains and acts; per-domain strengths; errors."""

from __future__ import annotations

import ast
import inspect

import jax
import numpy as np
import pytest

from qchunk.agents import (
    AGENT_NAMES,
    DOMAIN_NAMES,
    PRESET_NAMES,
    DsrlAgentConfig,
    FEditAgentConfig,
    FlowAgentConfig,
    QamEAgentConfig,
    QamFAgentConfig,
    SacAgentConfig,
    agent_config,
    make_agent,
)
from qchunk.agents import config as config_module
from qchunk.bench.update import synthetic_batch
from qchunk.errors import QchunkError

# The paper's table (paper_protocol.md): FQL alpha, FQL-n alpha, QC-FQL alpha, N BFN, N BFN-n, N QC.
PAPER_TABLE = {
    "scene": (300, 100, 300, 4, 4, 32),
    "puzzle-3x3": (100, 100, 300, 4, 4, 64),
    "cube-double": (300, 100, 300, 4, 4, 32),
    "cube-triple": (300, 100, 100, 4, 4, 32),
    "cube-quadruple": (300, 100, 100, 4, 4, 32),
    "robomimic": (10000, 10000, 10000, 4, 4, 16),
}
# The QAM paper's further domains: FQL's alpha of its reproduction script (experiments/reproduce.py) in
# every alpha column; N unpublished (the Q-chunking paper's usual 4, 4, 32).
QAM_DOMAINS = {
    "puzzle-4x4": (1, 1, 1, 4, 4, 32),
    "antmaze-large": (3, 3, 3, 4, 4, 32),
    "antmaze-giant": (3, 3, 3, 4, 4, 32),
    "humanoidmaze-medium": (30, 30, 30, 4, 4, 32),
    "humanoidmaze-large": (30, 30, 30, 4, 4, 32),
}
STRUCTURE = {  # name: (policy, horizon h, action horizon)
    "qc": ("best_of_n", 5, 5),
    "qc-fql": ("distill", 5, 5),
    "bfn": ("best_of_n", 1, 1),
    "bfn-n": ("best_of_n", 5, 1),
    "fql": ("distill", 1, 1),
    "fql-n": ("distill", 5, 1),
}
QAM_STRUCTURE = {"qam": ("best_of_n", 5, 5)}  # name: (policy, horizon h, action horizon); tests/test_qam.py
QAM_VARIANTS = ("qam-f", "qam-e")  # both presets and structure: tests/test_qam_variants.py
QAM_TABLE = ("bam", "cgql", "cgql-m", "cgql-l")  # presets and structure: tests/test_bam.py, tests/test_cgql.py
STEERED_STRUCTURE = {"fedit": (5, 5), "dsrl": (5, 5)}  # name: (horizon h, action horizon); tests/test_dsrl.py
DIFFUSION_STRUCTURE = {"qsm": (5, 5), "dac": (5, 5)}  # name: (horizon h, action horizon); tests/test_diffusion_agent.py
QAM_METHODS = ("rebrac", "fbrac", "ifql", "fawac")  # their own tests: tests/test_<name>.py
SAC_STRUCTURE = {  # name: (horizon h, BC coefficient)
    "rlpd": (1, 0.0),
    "rlpd-ac": (5, 0.0),
    "qc-rlpd": (5, 0.01),
}


def test_names():
    assert set(AGENT_NAMES) == (set(STRUCTURE) | set(SAC_STRUCTURE) | set(QAM_STRUCTURE) | set(STEERED_STRUCTURE)
                                | set(QAM_VARIANTS) | set(DIFFUSION_STRUCTURE) | set(QAM_METHODS)
                                | set(QAM_TABLE))
    assert set(PRESET_NAMES) == {"paper", "quick", "qam"}  # qam: tests/test_qam_preset.py
    assert set(DOMAIN_NAMES) == set(PAPER_TABLE) | set(QAM_DOMAINS)


@pytest.mark.parametrize("domain", sorted(PAPER_TABLE) + sorted(QAM_DOMAINS))
def test_domain_strengths_match_the_paper_table(domain):
    fql, fql_n, qc_fql, n_bfn, n_bfn_n, n_qc = {**PAPER_TABLE, **QAM_DOMAINS}[domain]
    assert agent_config("fql", domain=domain).alpha == fql
    assert agent_config("fql-n", domain=domain).alpha == fql_n
    assert agent_config("qc-fql", domain=domain).alpha == qc_fql
    assert agent_config("bfn", domain=domain).num_samples == n_bfn
    assert agent_config("bfn-n", domain=domain).num_samples == n_bfn_n
    assert agent_config("qc", domain=domain).num_samples == n_qc
    # the quick preset keeps the algorithm's constants
    assert agent_config("qc", "quick", domain).num_samples == n_qc
    assert agent_config("qc-fql", "quick", domain).alpha == qc_fql


@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_fql_cube_triple_keeps_the_paper_table_alpha_over_the_authors_readme(preset):
    # The paper's appendix table: FQL alpha 300 on cube-triple; the authors' README command for FQL there
    # passes --agent.alpha=100 (README.md of ColinQiyangLi/qc). The preset follows the paper; --alpha 100
    # gives the README's value.
    assert agent_config("fql", preset, "cube-triple").alpha == 300
    assert agent_config("fql", preset, "cube-triple", alpha=100).alpha == 100
    assert agent_config("qc-fql", preset, "cube-triple").alpha == 100
    assert agent_config("fql-n", preset, "cube-triple").alpha == 100


def test_default_domain_is_cube_double():
    assert agent_config("qc").domain == "cube-double"
    assert agent_config("qc").num_samples == 32
    assert agent_config("qc-fql").alpha == 300


@pytest.mark.parametrize("name", sorted(STRUCTURE))
def test_structure_and_paper_constants(name):
    policy, h, action_h = STRUCTURE[name]
    paper = agent_config(name, "paper")
    assert (paper.policy, paper.horizon, paper.action_horizon) == (policy, h, action_h)
    assert paper.chunked == (h == action_h)
    assert paper.actor_hidden_dims == paper.critic_hidden_dims == (512, 512, 512, 512)
    assert (paper.lr, paper.discount, paper.tau) == (3e-4, 0.99, 0.005)
    assert (paper.num_critics, paper.flow_steps, paper.q_agg) == (2, 10, "mean")
    assert paper.critic_layer_norm and not paper.actor_layer_norm
    quick = agent_config(name, "quick")
    assert quick.actor_hidden_dims == quick.critic_hidden_dims == (256, 256)
    assert (quick.policy, quick.horizon, quick.action_horizon) == (policy, h, action_h)


@pytest.mark.parametrize("name", sorted(SAC_STRUCTURE))
def test_rlpd_family_structure_and_paper_constants(name):
    h, bc = SAC_STRUCTURE[name]
    paper = agent_config(name, "paper", "robomimic")
    assert isinstance(paper, SacAgentConfig) and not paper.pretrains_offline
    assert (paper.horizon, paper.action_horizon, paper.chunked, paper.bc_coef) == (h, h, True, bc)
    # the authors' best RLPD: K=10 LayerNorm critics, mean target (no clipped double-Q), no entropy backup
    assert (paper.num_critics, paper.q_agg, paper.backup_entropy, paper.critic_layer_norm) == (10, "mean", False, True)
    assert paper.target_entropy(7) == -0.5 * h * 7
    assert paper.actor_hidden_dims == paper.critic_hidden_dims == (512, 512, 512, 512)
    assert (paper.lr, paper.discount, paper.tau) == (3e-4, 0.99, 0.005)
    assert paper.eval_policy == "sample"  # the authors evaluate with sampled actions
    assert agent_config(name, "quick").actor_hidden_dims == (256, 256)
    with pytest.raises(QchunkError, match=f"unknown setting.*num_samples for agent {name}"):
        agent_config(name, num_samples=4)


# Every agent at the quick preset; the paper preset (larger networks, other N and K: the same code) for one
# agent of each acting rule (best-of-N, distilled one-step, tanh-Gaussian, adjoint-matched flow).
PAPER_PRESET_AGENTS = ("qc", "qc-fql", "rlpd-ac", "qam")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "preset"),
                         [(n, "quick") for n in sorted(STRUCTURE) + sorted(SAC_STRUCTURE) + sorted(QAM_STRUCTURE)]
                         + [(n, "paper") for n in PAPER_PRESET_AGENTS])
def test_every_agent_and_preset_trains_and_acts(name, preset):
    obs_dim, act_dim, size = 37, 5, 8  # paper-size networks, small batch to keep the test fast
    agent = make_agent(name, obs_dim, act_dim, preset=preset, seed=1)
    flow_like = {**STRUCTURE, **QAM_STRUCTURE}
    h, action_h = flow_like[name][1:] if name in flow_like else (SAC_STRUCTURE[name][0],) * 2
    assert agent.config.horizon == agent.horizon == h and agent.action_horizon == action_h
    batch = synthetic_batch(size, h, obs_dim, act_dim, 0.99, seed=2)
    before = jax.tree_util.tree_leaves(agent.params)[0]
    for _ in range(3):
        agent, info = agent.update(batch)
        assert all(np.isfinite(float(v)) for v in info.values())
    assert int(agent.step) == 3
    assert not np.array_equal(np.asarray(before), np.asarray(jax.tree_util.tree_leaves(agent.params)[0]))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(agent.params))
    actions = np.asarray(agent.sample_actions(batch["observations"][:3], jax.random.PRNGKey(0)))
    assert actions.shape == (3, action_h, act_dim)
    assert np.all(np.isfinite(actions)) and np.all(np.abs(actions) <= 1.0)


def test_overrides_are_applied_and_validated():
    config = agent_config("qc-fql", "quick", "cube-triple", horizon=10, q_agg="min", actor_hidden_dims=[64, 64])
    assert config.horizon == 10 and config.action_horizon == 10 and config.q_agg == "min"
    assert config.actor_hidden_dims == (64, 64)  # lists become tuples (hashable, jit-static)
    assert config.alpha == 100 and config.domain == "cube-triple"
    assert agent_config("qc", alpha=5.0).alpha == 5.0
    hash(config)
    with pytest.raises(QchunkError, match="q_agg"):
        agent_config("qc", q_agg="max")
    with pytest.raises(QchunkError, match="horizon"):
        agent_config("qc", horizon=0)


@pytest.mark.parametrize(
    ("kwargs", "kind", "choices"),
    [
        ({"name": "sac"}, "agent", AGENT_NAMES),
        ({"name": "qc", "preset": "huge"}, "preset", PRESET_NAMES),
        ({"name": "qc", "domain": "antmaze"}, "domain", DOMAIN_NAMES),
    ],
)
def test_unknown_names_raise_one_line_with_choices(kwargs, kind, choices):
    with pytest.raises(QchunkError) as err:
        agent_config(**kwargs)
    message = str(err.value)
    assert "\n" not in message and f"unknown {kind}" in message
    assert all(choice in message for choice in choices)
    with pytest.raises(QchunkError):
        make_agent(kwargs["name"], 3, 2, preset=kwargs.get("preset", "paper"), domain=kwargs.get("domain"))


def test_unknown_override_lists_valid_settings():
    with pytest.raises(QchunkError) as err:
        make_agent("qc", 3, 2, num_sample=8)
    message = str(err.value)
    assert "\n" not in message and "num_sample" in message and "num_samples" in message and "q_agg" in message


def test_bad_dimensions_raise():
    with pytest.raises(QchunkError):
        make_agent("qc", 0, 2)


@pytest.mark.parametrize("cls", [FlowAgentConfig, SacAgentConfig, FEditAgentConfig, DsrlAgentConfig, QamFAgentConfig,
                                 QamEAgentConfig])
def test_every_config_field_has_a_docstring(cls):
    tree = ast.parse(inspect.getsource(config_module))
    documented = set()
    for klass in (k for k in cls.__mro__ if k.__module__ == config_module.__name__):
        node_cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == klass.__name__)
        for node, nxt in zip(node_cls.body, node_cls.body[1:], strict=False):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                documented.add(node.target.id)
    fields = set(cls.__dataclass_fields__)
    assert fields and fields <= documented
