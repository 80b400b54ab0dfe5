"""The agent registry is the single source of every agent list: the helps, plot labels, reference overlays,
``--preset qam``, the recipes, the sweep's agent check and bench derive from it, and a registration made in a
test shows up in all of them."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from importlib import resources
from pathlib import Path

import pytest

import qchunk
import qchunk.agents as agents_pkg
from qchunk.agents import SacAgent, SacAgentConfig, agent_config, make_agent
from qchunk.agents import presets as presets_module
from qchunk.agents.config import FlowAgentConfig, QamAgentConfig
from qchunk.agents.flow_agent import FlowAgent
from qchunk.agents.registry import (
    AgentSpec,
    agent_names,
    agent_spec,
    agent_specs,
    display_name,
    qam_preset_agents,
    register,
    unregister,
)
from qchunk.bench.update_suite import UpdateSettings
from qchunk.cli import main
from qchunk.errors import QchunkError
from qchunk.experiments.grid import expand_grid
from qchunk.experiments.recipes import RECIPES, qam_main_agents
from qchunk.experiments.sweep_plan import available_agents
from qchunk.plotting import load_runs
from qchunk.plotting.reference import paper_method, qam_counterparts, qam_method
from qchunk.training.config import TrainConfig, agent_help
from test_plot_report import make_run

SRC = Path(qchunk.__file__).resolve().parent

BUILT_IN = ("qc", "qc-fql", "bfn", "bfn-n", "fql", "fql-n", "rlpd", "rlpd-ac", "qc-rlpd", "qam", "qam-f", "qam-e",
            "fedit", "dsrl", "rebrac", "fbrac", "ifql", "fawac", "bam", "cgql", "cgql-m", "cgql-l", "qsm", "dac")


def words(text: str) -> set[str]:
    """The agent-name-like words of a help text (names hold letters, digits and '-')."""
    return set(re.findall(r"[a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9]", text))


def help_text(capsys, monkeypatch, argv: list[str]) -> str:
    """``qchunk ARGV --help`` with the box drawing removed and whitespace collapsed."""
    monkeypatch.setenv("COLUMNS", "100")  # one column of options
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())


def release_methods(resource: str) -> set[str]:
    raw = json.loads(resources.files("qchunk.resources").joinpath(resource).read_text())["curves"]
    return {k.rsplit("/", 1)[1] for k in raw}


def test_the_built_in_registrations():
    assert agent_names() == BUILT_IN
    assert agents_pkg.AGENT_NAMES == BUILT_IN
    specs = agent_specs()
    assert len({s.display for s in specs}) == len(specs)
    # every key a registration names is in the shipped curve sets
    assert {s.paper_curve for s in specs if s.paper_curve} <= release_methods("paper_curves.json")
    assert {s.qam_curve for s in specs if s.qam_curve} <= release_methods("qam_curves.json")
    assert qam_preset_agents() == ("qc-fql", "fql", "rlpd", "rlpd-ac", "qam", "qam-f", "qam-e", "fedit", "dsrl",
                                   "rebrac", "fbrac", "ifql", "fawac", "bam", "cgql", "cgql-m", "cgql-l", "qsm", "dac")
    assert {s.name for s in specs if s.online_only} == {"rlpd", "rlpd-ac", "qc-rlpd"}
    assert agents_pkg.AGENT_CLASSES[QamAgentConfig].__name__ == "QamAgent"
    assert all(s.reference and "arXiv" in s.reference for s in specs)


def test_every_registered_agent_is_in_every_derived_list(capsys, monkeypatch):
    names = set(agent_names())
    train_help = help_text(capsys, monkeypatch, ["train"])
    assert " ".join(agent_help().split()) in train_help and names <= words(agent_help())
    bench_help = help_text(capsys, monkeypatch, ["bench"])
    assert f"--agent {{None}}|STR Agent ({', '.join(agent_names())})." in bench_help
    assert set(qam_preset_agents()) <= words(qam_counterparts())
    assert set(UpdateSettings().agents) == names
    assert set(available_agents()) == names  # the sweep's check of recipe and --agents names
    assert set(RECIPES["qam-main"].agents) == set(qam_main_agents())
    for spec in agent_specs():
        agent_config(spec.name)  # resolves at the paper preset
        assert display_name(spec.name) == spec.display
        assert paper_method(spec.display) == spec.paper_curve
        assert qam_method(spec.display, "cube-double") == (spec.qam_curve if "play" in spec.qam_datasets else None)


def test_preset_rows_are_keyed_by_registered_names():
    names = set(agent_names())
    assert set(presets_module.VARIANTS) <= names
    for rows in (presets_module.STEERED_DOMAIN_SETTINGS, presets_module.QAM_VARIANT_SETTINGS,
                 presets_module.DIFFUSION_DOMAIN_SETTINGS,
                 presets_module.QAM_METHOD_SETTINGS):
        assert set(rows) <= names
    assert presets_module.family_agents("steered") == agents_pkg.STEERED_AGENT_NAMES == ("fedit", "dsrl")


def test_no_other_module_lists_agents():
    """Outside the registrations (agents/__init__.py), the preset rows (agents/presets.py) and the recipes
    (experiments choose their agents), no source literal names two registered agents."""
    names = set(agent_names())
    # the benchmarks choose the agents they time, as the recipes choose theirs
    allowed = {SRC / "agents" / "__init__.py", SRC / "agents" / "presets.py", SRC / "experiments" / "recipes.py",
               SRC / "bench" / "gpu.py", SRC / "bench" / "loop.py"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(), str(path))
        literal_args = {id(sub.slice) for sub in ast.walk(tree)  # Literal["rlpd", "qam"]: values, not agents
                        if isinstance(sub, ast.Subscript) and getattr(sub.value, "id", None) == "Literal"}
        for node in ast.walk(tree):
            if id(node) in literal_args:
                continue
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None) or []
            listed = [e.value for e in items if isinstance(e, ast.Constant) and e.value in names]
            if len(listed) >= 2:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {listed}")
    assert not found, f"agent lists outside the registry: {found}"


@pytest.fixture
def toy():
    """A registration made from a test: an RLPD-family preset whose QAM counterpart is RLPD on manipulation."""
    spec = register(AgentSpec("toy-rlpd", SacAgent, SacAgentConfig, "Toy-RLPD", "a test (arXiv 0000.00000)",
                              paper_curve="RLPD-AC", qam_curve="RLPD", qam_datasets=("play",),
                              bench_domain="cube-triple"))
    yield spec
    unregister(spec.name)
    assert "toy-rlpd" not in agent_names()


def test_a_new_registration_appears_everywhere(toy, tmp_path):
    assert agent_names()[-1] == "toy-rlpd" and agents_pkg.AGENT_NAMES[-1] == "toy-rlpd"
    assert "toy-rlpd" in agents_pkg.SAC_AGENT_NAMES and "toy-rlpd" in presets_module.QAM_PRESET_AGENTS
    assert "toy-rlpd" in words(agent_help()) and "toy-rlpd (manipulation)" in qam_counterparts()
    # configs, agents, runs
    config = agent_config("toy-rlpd", "quick", "cube-double", actor_hidden_dims=(8,), critic_hidden_dims=(8,))
    assert isinstance(config, SacAgentConfig) and config.agent == "toy-rlpd"
    assert agent_config("toy-rlpd", "qam", "antmaze-giant").num_critics == 10  # --preset qam runs it
    agent = make_agent("toy-rlpd", 3, 2, "quick", actor_hidden_dims=(8,), critic_hidden_dims=(8,))
    assert isinstance(agent, SacAgent)
    assert TrainConfig(agent="toy-rlpd").resolved().offline_steps == 0  # online-only, from the config class
    assert expand_grid(["e"], ["toy-rlpd", "qc"], [0], {"offline_steps": 7})[0].settings == {}
    # sweep, recipes, bench
    assert "toy-rlpd" in available_agents() and "toy-rlpd" in qam_main_agents()
    assert "toy-rlpd" in UpdateSettings().agents and UpdateSettings().agent_domains["toy-rlpd"] == "cube-triple"
    # plots and references
    assert display_name("toy-rlpd") == "Toy-RLPD" and paper_method("Toy-RLPD") == "RLPD-AC"
    assert qam_method("Toy-RLPD", "cube-double") == "RLPD" and qam_method("toy-rlpd", "antmaze-large") is None
    make_run(tmp_path, "cube-double-play-singletask-task1-v0", "toy-rlpd", 0)
    assert [r.label for r in load_runs([tmp_path])] == ["Toy-RLPD"]


def test_an_unregistered_agent_is_unknown_everywhere():
    with pytest.raises(QchunkError, match=r"unknown agent 'toy-rlpd'"):
        agent_config("toy-rlpd")
    with pytest.raises(QchunkError, match=r"unknown agent 'qc-fq' \(did you mean 'qc-fql'\?\)"):
        agent_spec("qc-fq")
    assert display_name("toy-rlpd") == "toy-rlpd" and qam_method("toy-rlpd", "cube-double") is None


def test_bad_registrations_are_refused():
    good = dict(name="toy", agent=FlowAgent, config=FlowAgentConfig, display="Toy", reference="a test")
    for change, match in (({"name": "Toy"}, "lower-case"), ({"name": "a b"}, "lower-case"),
                          ({"name": "qc"}, "already registered"), ({"display": "QC-FQL"}, "is 'qc-fql'"),
                          ({"agent": SacAgent}, "one config class has one agent class"),
                          ({"config": dict}, "must be an AgentConfig"), ({"agent": object}, "has no create"),
                          ({"qam_datasets": ("maze",)}, "unknown dataset type")):
        with pytest.raises(QchunkError, match=match):
            register(AgentSpec(**{**good, **change}))
    assert "toy" not in agent_names()
    # replace=True swaps a registration in place (order kept)
    original = agent_spec("bfn")
    try:
        register(dataclasses.replace(original, display="BFN*"), replace=True)
        assert display_name("bfn") == "BFN*" and agent_names() == BUILT_IN
    finally:
        register(original, replace=True)
    assert display_name("bfn") == "BFN"
