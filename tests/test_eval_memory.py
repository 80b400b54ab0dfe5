"""Evaluation memory: few environments open at once, this process stepping its share, waves that do not change
the episodes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.bench.eval_speed import TRAINER_EVAL_ENVS
from qchunk.evaluation import EnvPool, evaluation_seeds, run_episodes
from qchunk.tasks import get_task
from qchunk.training import TrainConfig

QCHUNK = str(Path(sys.executable).parent / "qchunk")
TINY = get_task(TINY_TASK)


class RecordingPolicy:
    """A fixed deterministic controller (chunks of ``h`` copies of tanh(obs[:5])); keeps every batch it sees."""

    def __init__(self, h: int = 5):
        self.h, self.batches = h, []

    def __call__(self, obs):
        self.batches.append(obs.copy())
        return np.tanh(obs[:, :5])[:, None, :].repeat(self.h, axis=1).astype(np.float32)


def test_trainer_default_keeps_two_envs_open():
    assert TrainConfig.__dataclass_fields__["eval_envs"].default == TRAINER_EVAL_ENVS == 2  # the bench measures it


@pytest.mark.slow
def test_pool_steps_a_share_here_and_the_rest_in_workers_with_the_same_episodes():
    seeds = evaluation_seeds(7, 0, 3)
    split, alone = RecordingPolicy(), RecordingPolicy()
    with EnvPool(TINY, sparse=False, n=2, workers=2, episode_length=12) as pool:
        assert pool.layout == [1, 1] and len(pool.worker_pids) == 1  # one env here, one in one worker process
        waves = run_episodes(split, pool, seeds)  # 2 at once, then the first env takes the third (the second idle)
    with EnvPool(TINY, sparse=False, n=1, workers=2, episode_length=12) as pool:
        assert pool.layout == [1] and pool.worker_pids == []  # never more processes than environments
        one_by_one = run_episodes(alone, pool, seeds)  # one after another
    q = int(np.ceil(12 / 5))
    assert len(split.batches) == 2 * q and len(alone.batches) == 3 * q
    assert all(b.shape == (2, 55) for b in split.batches) and all(b.shape == (1, 55) for b in alone.batches)
    # every episode saw the same observations at every chunk start, whatever wave and process ran it
    for t in range(q):
        np.testing.assert_array_equal(split.batches[t][0], alone.batches[t][0])
        np.testing.assert_array_equal(split.batches[t][1], alone.batches[q + t][0])
        np.testing.assert_array_equal(split.batches[q + t][0], alone.batches[2 * q + t][0])
    assert (waves.episode_return, waves.episode_length, waves.success) == \
        (one_by_one.episode_return, one_by_one.episode_length, one_by_one.success)
    assert waves.episode_return < 0  # dense puzzle reward: a real, seed-dependent episode


def _tree_rss_mb(root: int) -> float:
    """Summed VmRSS of ``root`` and all its descendants (Linux /proc)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0.0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            pass
    return total


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_a_50_episode_evaluation_stays_under_2_gb(tiny_ogbench_dir, tmp_path):
    # before: 25 environments open over 2 worker processes, 5.9 GB for this evaluation's process tree
    cmd = [QCHUNK, "train", "--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "5",
           "--online-steps", "0", "--eval-every", "5", "--eval-episodes", "50", "--episode-length", "6",
           "--eval-workers", "2", "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(tmp_path / "run"),
           "--no-progress", "--no-tensorboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.1)
    assert proc.returncode == 0, proc.stderr.read()
    rows = (tmp_path / "run" / "eval.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[6] == "6.0"  # the 50 episodes of 6 steps ran
    print(f"peak summed RSS of the tree: {peak:.0f} MB")
    assert 200 < peak < 2000, f"peak {peak:.0f} MB"
