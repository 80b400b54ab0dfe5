"""``--preset qam``: the QAM paper's protocol for every method it runs (per-domain values of its reproduction
script, github.com/ColinQiyangLi/qam experiments/reproduce.py, written out here by hand), the run lengths, the 100M
shard directories, the refusals, the dry run of the issue, and the ``qam-main`` recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qchunk.agents import agent_config
from qchunk.agents.presets import QAM_PRESET_AGENTS
from qchunk.cli import main
from qchunk.errors import QchunkError
from qchunk.experiments.sweep import SweepArgs, plan_sweep
from qchunk.training import TrainConfig

MAZES = ("antmaze-large", "antmaze-giant", "humanoidmaze-medium", "humanoidmaze-large")
# The script's rows, per domain: QAM_FQL (inv_temp, fql_alpha), QAM_EDIT (inv_temp, edit_scale), QAM inv_temp,
# FQL alpha, FEDIT edit_scale, DSRL noise_scale.
SCRIPT = {
    "puzzle-3x3": ((3, 0), (1, 0.1), 3, 300, 0.2, 1.0),
    "scene": ((1, 300), (1, 0.0), 1, 300, 0.2, 0.4),
    "cube-double": ((1, 0), (1, 0.0), 1, 300, 0.2, 1.0),
    "cube-triple": ((10, 300), (3, 0.1), 3, 30, 0.3, 1.4),
    "cube-quadruple": ((0.3, 30), (3, 0.1), 1, 100, 0.4, 1.4),
    "puzzle-4x4": ((3, 3), (0.1, 0.9), 30, 1, 0.8, 1.0),
    "antmaze-large": ((3, 30), (1, 0.1), 10, 3, 0.2, 0.8),
    "antmaze-giant": ((3, 30), (10, 0.1), 3, 3, 0.3, 1.2),
    "humanoidmaze-medium": ((1, 30), (3, 0.1), 3, 30, 0.5, 0.6),
    "humanoidmaze-large": ((0.3, 30), (3, 0.1), 3, 30, 0.1, 0.8),
}


def protocol(domain):
    """What the script gives every method: (horizon of chunked methods, discount, rho)."""
    return (1 if domain in MAZES else 5, 0.995 if domain in MAZES[1:] else 0.99, 0.0 if "humanoid" in domain else 0.5)


@pytest.mark.parametrize("domain", sorted(SCRIPT))
def test_every_method_gets_the_scripts_values(domain):
    (f_beta, f_alpha), (e_beta, e_scale), beta, fql_alpha, edit, noise = SCRIPT[domain]
    h, gamma, rho = protocol(domain)
    configs = {name: agent_config(name, "qam", domain) for name in QAM_PRESET_AGENTS}
    for name, c in configs.items():  # shared: 4x512 networks, K=10, the pessimistic target, the domain's gamma
        assert c.actor_hidden_dims == c.critic_hidden_dims == (512,) * 4, name
        assert (c.num_critics, c.q_agg, c.rho, c.discount, c.lr) == (10, "mean", rho, gamma, 3e-4), name
        assert c.horizon == (1 if name in ("fql", "rlpd") else h), name
    assert (configs["qam"].inv_temp, configs["qam"].num_samples) == (beta, 1)
    assert (configs["qam-f"].inv_temp, configs["qam-f"].alpha) == (f_beta, f_alpha)
    assert (configs["qam-e"].inv_temp, configs["qam-e"].edit_scale) == (e_beta, e_scale)
    assert configs["qc-fql"].alpha == configs["fql"].alpha == fql_alpha and configs["qc-fql"].policy == "distill"
    assert configs["qc-fql"].bc_weighting == configs["fql"].bc_weighting == "chunk"  # the QAM repo's fql.py
    assert (configs["fedit"].edit_scale, configs["dsrl"].noise_scale) == (edit, noise)
    assert configs["rlpd-ac"].bc_coef == 0.0  # the script does not pass its RLPD bc_alpha row on


def test_the_other_presets_keep_the_q_chunking_protocol():
    for preset in ("paper", "quick"):
        c = agent_config("qc-fql", preset, "cube-triple")
        assert (c.num_critics, c.rho, c.alpha, c.horizon, c.bc_weighting) == (2, 0.0, 100.0, 5, "step")
        assert agent_config("rlpd-ac", preset, "antmaze-large").horizon == 5
    assert agent_config("qc-fql", "qam", "cube-triple", alpha=7.0, rho=0.0).alpha == 7.0  # overrides win


def test_the_preset_refuses_the_methods_the_paper_does_not_run(tmp_path, monkeypatch, capsys):
    with pytest.raises(QchunkError, match=r"preset qam is the QAM paper's protocol.*qc is not among them") as err:
        agent_config("qc", "qam")
    assert "\n" not in str(err.value)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--agent", "bfn", "--preset", "qam", "--dry-run"]) == 2
    assert "use --preset paper (or quick) for bfn" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_run_lengths_and_the_100m_shard_directories(tmp_path):
    cfg = TrainConfig(agent="qam-f", env="cube-triple-play-singletask-task2-v0", preset="qam").resolved()
    assert (cfg.offline_steps, cfg.online_steps, cfg.eval_every, cfg.checkpoint_every) == (
        1_000_000, 500_000, 50_000, 50_000)
    assert (cfg.batch_size, cfg.utd, cfg.eval_episodes, cfg.buffer_size, cfg.dataset_dir) == (256, 1, 50, None, None)
    online = TrainConfig(agent="rlpd-ac", env="cube-double-play-singletask-task1-v0", preset="qam").resolved()
    assert (online.offline_steps, online.online_steps) == (0, 500_000)
    for domain in ("cube-quadruple", "puzzle-4x4"):
        shards, env = f"{domain}-play-100m-v0", f"{domain}-play-singletask-task3-v0"
        got = TrainConfig(agent="qam", env=env, preset="qam", dataset_dir=str(tmp_path)).resolved().dataset_dir
        assert got == str(tmp_path / shards)
        again = TrainConfig(agent="qam", env=env, preset="qam", dataset_dir=got).resolved().dataset_dir
        assert again == got  # a --dataset-dir that already names the shard directory stays
        default = TrainConfig(agent="qam", env=env, preset="qam").resolved().dataset_dir
        assert default == str(Path("~/.ogbench/data").expanduser() / shards)
        assert TrainConfig(agent="qam", env=env, preset="paper").resolved().dataset_dir is None


def test_dry_run_of_qam_e_shows_the_papers_settings_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--agent", "qam-e", "--env", "cube-triple-play-singletask-task2-v0", "--preset", "qam",
                 "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    run, agent = printed["train"], printed["agent"]
    assert (run["preset"], run["offline_steps"], run["online_steps"], run["eval_every"], run["batch_size"]) == (
        "qam", 1_000_000, 500_000, 50_000, 256)
    assert (agent["agent"], agent["preset"], agent["domain"]) == ("qam-e", "qam", "cube-triple")
    assert agent["actor_hidden_dims"] == agent["critic_hidden_dims"] == [512] * 4
    assert (agent["num_critics"], agent["horizon"], agent["rho"], agent["discount"]) == (10, 5, 0.5, 0.99)
    assert (agent["inv_temp"], agent["edit_scale"], agent["num_samples"], agent["flow_steps"]) == (3.0, 0.1, 1, 10)
    assert (agent["init_temperature"], agent["target_entropy_per_dim"], agent["max_grad_norm"]) == (1.0, -0.5, 1.0)
    assert list(tmp_path.iterdir()) == []


def test_qam_main_recipe_is_the_papers_grid(capsys):
    assert main(["sweep", "--recipe", "qam-main", "--dry-run", "--out", "/nonexistent/sweep"]) == 0
    out = capsys.readouterr().out
    assert "sweep qam-main: 10200 runs" in out and "humanoidmaze-large-navigate-singletask-task5-v0" in out
    plan = plan_sweep(SweepArgs(recipe="qam-main", envs=(("antmaze-giant-navigate-singletask-task1-v0",),),
                                seeds=(("0",),), out="/nonexistent/sweep"))
    assert sorted(r.label for r in plan.runs) == sorted(["qam", "qam-f", "qam-e", "fedit", "dsrl", "qc-fql", "rlpd-ac",
                                                         "rebrac", "fbrac", "ifql", "fawac", "bam", "cgql", "cgql-m",
                                                         "cgql-l", "qsm", "dac"])
    fql = next(r.config() for r in plan.runs if r.label == "qc-fql")
    assert fql.preset == "qam"
    resolved = agent_config(fql.agent, fql.preset, "antmaze-giant", **fql.agent_overrides())
    assert (resolved.horizon, resolved.alpha, resolved.discount) == (1, 3.0, 0.995)  # the paper's FQL on the mazes
