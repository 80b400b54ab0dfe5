"""Every command that picks a checkpoint says which, and which newer ones it skipped and why, in one line
(``qchunk eval``, ``data collect --policy RUN``, ``--resume``, ``--extra-data``); a resume names the seed."""

import dataclasses
import json

import numpy as np
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import agent_config, create_agent
from qchunk.cli import main
from qchunk.training import RunDir, TrainConfig
from qchunk.training.config import AgentOverrides

SMALL = AgentOverrides(actor_hidden_dims=(8, 8), critic_hidden_dims=(8, 8))


def _run_with_checkpoints(path, cfg, obs_dim, act_dim, steps=(10, 20)):
    """A run directory with real checkpoints of a real agent at ``steps`` (as ``train`` writes them)."""
    acfg = agent_config(cfg.agent, cfg.preset, cfg.task.domain.name, **cfg.agent_overrides())
    run = RunDir(path)
    run.path.mkdir(parents=True)
    run.write_config(cfg, acfg, obs_dim, act_dim)
    agent = create_agent(acfg, obs_dim, act_dim, seed=cfg.seed)
    for step in steps:
        run.checkpoints.save(step, serialization.to_bytes(agent), {"counters": {}})
    return run


def _dims(dataset_dir):
    with np.load(dataset_dir / "puzzle-3x3-play-v0.npz") as z:
        return z["observations"].shape[1], z["actions"].shape[1]


def _garble(run, step):
    (run.checkpoints.root / f"step_{step:010d}" / "agent.msgpack").write_bytes(b"\x00" * 64)


def _stderr_lines(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_eval_names_the_checkpoint_it_used_and_the_damaged_one_it_skipped(tiny_ogbench_dir, tmp_path, capsys):
    cfg = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(tiny_ogbench_dir), seed=3,
                      overrides=SMALL).resolved()
    run = _run_with_checkpoints(tmp_path / "run", cfg, *_dims(tiny_ogbench_dir))
    _garble(run, 20)
    out = tmp_path / "ev"
    assert main(["eval", str(run.path), "--episodes", "1", "--workers", "1", "--episode-length", "3",
                 "--out", str(out)]) == 0
    lines = _stderr_lines(capsys)
    assert json.loads((out / "summary.json").read_text())["checkpoint_step"] == 10
    said = [ln for ln in lines if "checkpoint step_" in ln]
    assert said == [f"evaluating {run.path} (seed 3): checkpoint step_0000000010 (step 10), the newest intact one: "
                    "checkpoint step_0000000020 is damaged (agent.msgpack has 64 bytes, the manifest says "
                    f"{len(serialization.to_bytes(run.load_agent(10)[0]))}), skipped"], lines
    assert (run.checkpoints.root / "step_0000000020").is_dir()  # reading never renames


def test_data_collect_policy_names_the_checkpoint_that_acted(tmp_path, capsys):
    cfg = TrainConfig(agent="qc-fql", env="gym:InvertedPendulum-v5", preset="quick", dataset="unused.npz",
                      overrides=SMALL)
    cfg = dataclasses.replace(cfg, seed=1)
    run = _run_with_checkpoints(tmp_path / "run", cfg, 4, 1)
    _garble(run, 20)
    out = tmp_path / "collected.npz"
    assert main(["data", "collect", "--env", "gym:InvertedPendulum-v5", "--policy", str(run.path), "--episodes", "1",
                 "--episode-length", "5", "--out", str(out)]) == 0
    said = [ln for ln in _stderr_lines(capsys) if "checkpoint step_" in ln]
    assert len(said) == 1 and said[0].startswith(f"--policy: acting with {run.path} (seed 1): checkpoint "
                                                 "step_0000000010 (step 10), the newest intact one: checkpoint "
                                                 "step_0000000020 is damaged (agent.msgpack has 64 bytes"), said
    assert out.is_file()


def test_resume_names_the_seed_the_checkpoint_and_the_one_set_aside(tiny_ogbench_dir, tmp_path):
    cfg = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(tiny_ogbench_dir), seed=5,
                      overrides=SMALL).resolved()
    run = _run_with_checkpoints(tmp_path / "seed5", cfg, *_dims(tiny_ogbench_dir), steps=(10, 20, 30))
    _garble(run, 30)
    said = []
    ckpt = run.claim(dataclasses.replace(cfg, resume=True), say=said.append)
    assert ckpt.step == 20
    assert len(said) == 1 and said[0].startswith(
        f"resuming {run.path} (seed 5) from checkpoint step_0000000020 (step 20), the newest intact one: checkpoint "
        "step_0000000030 is damaged (agent.msgpack has 64 bytes"), said
    assert said[0].endswith("set aside as damaged-step_0000000030")
    said.clear()
    assert run.claim(dataclasses.replace(cfg, resume=True), say=said.append).step == 20
    assert said == [f"resuming {run.path} (seed 5) from checkpoint step_0000000020 (step 20)"]
