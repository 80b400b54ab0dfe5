"""``qchunk sweep`` where a Ray cluster already runs: a private local instance by default, the cluster with
``--ray-address``; and no Ray notices on stderr."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_TASK

BIN = Path(sys.executable).parent
TINY = ["--set", "preset=quick", "--set", "offline_steps=2", "--set", "online_steps=0", "--set", "eval_every=2",
        "--set", "eval_episodes=1", "--set", "episode_length=3", "--set", "log_every=2", "--set",
        "checkpoint_every=2", "--set", "actor_hidden_dims=16,16", "--set", "critic_hidden_dims=16,16", "--set",
        "batch_size=8", "--set", "tensorboard=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_cluster(tmp_path):
    """A real one-CPU Ray head on 127.0.0.1, as `ray start --head` leaves one on a cluster node; stopped by
    ending the `--block`ing `ray start` process this fixture started (no `ray stop`: that would end every Ray
    instance of this user on the machine)."""
    port = _free_port()
    temp = Path("/tmp") / f"qchunk-ray-{port}"  # short: Ray's socket paths must fit in 107 characters
    log = open(tmp_path / "ray_start.log", "w+")
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--port", str(port), "--node-ip-address",
                             "127.0.0.1", "--num-cpus", "1", "--include-dashboard", "false", "--block",
                             "--temp-dir", str(temp)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in (tmp_path / "ray_start.log").read_text():
            assert head.poll() is None and time.time() < deadline, (tmp_path / "ray_start.log").read_text()
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # --block: ending it stops the processes of this head
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_sweep_starts_its_own_ray_beside_a_running_cluster_or_joins_it(running_cluster, tiny_ogbench_dir, tmp_path):
    out = tmp_path / "sweep"
    env = {**os.environ, "RAY_ADDRESS": running_cluster}  # as on a node of the cluster
    args = [str(BIN / "qchunk"), "sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--dataset-dir",
            str(tiny_ogbench_dir), "--out", str(out), "--refresh", "0.5", *TINY]
    # a plain sweep: a private local instance with --local-cpus, although RAY_ADDRESS names a cluster
    plain = subprocess.run([*args, "--seeds", "0", "--local-cpus", "2"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert "WARNING" not in plain.stderr and "Token" not in plain.stderr, plain.stderr  # no Ray notices
    assert "joined" not in plain.stderr
    # joining the cluster: its one CPU, said on stderr
    joined = subprocess.run([*args, "--seeds", "0-1", "--ray-address", "auto"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert joined.returncode == 0, joined.stderr
    assert "joined the Ray cluster at auto (1 CPU, 0 GPU)" in joined.stderr, joined.stderr
    assert "WARNING" not in joined.stderr, joined.stderr
    assert "1 already finished, 1 to run" in joined.stdout
    for seed in (0, 1):
        assert json.loads((out / TINY_TASK / "qc-fql" / f"seed{seed}" / "result.json").read_text())["finished"]
