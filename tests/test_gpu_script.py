"""``bash bench/gpu.sh``: the GPU check runs its whole path at tiny sizes on the CPU (``--dry-run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu.sh"


def _run(*args, timeout=900):
    # the script's own 8-minute limit is for a GPU; a shared CPU gets the test's
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable, "QCHUNK_GPU_LIMIT_S": str(timeout - 60)})


@pytest.mark.slow  # compiles qc, qc-fql and qam at tiny sizes and runs a short e2e: minutes on 2 cores
def test_gpu_script_dry_run_writes_both_documents(tmp_path):
    done = _run("--dry-run", "--out-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    update = json.loads((tmp_path / "out" / "gpu-update.json").read_text())
    assert update["suite"] == "gpu-update" and update["results"]["dry_run"] is True
    assert [a["agent"] for a in update["results"]["agents"]] == ["qc", "qc-fql", "qam"]
    for agent in update["results"]["agents"]:
        assert [(r["seeds"], r["mode"]) for r in agent["rows"]] == [(1, "plain"), (2, "vmap")]
        assert all(r["updates_per_s"] > 0 and r["metrics_finite"] for r in agent["rows"])
    e2e = json.loads((tmp_path / "out" / "gpu-e2e.json").read_text())["results"]
    assert e2e["sample_on"] == "device" and (e2e["offline_steps"], e2e["online_steps"]) == (30, 30)
    assert e2e["evaluations"] == 2 and e2e["wall_s"] > 0 and e2e["offline_updates_per_s"] > 0
    assert e2e["env"] == "puzzle-3x3-play-singletask-task1-v0" and e2e["sparse"] is False  # the main job's task


def test_gpu_script_refuses_bad_parts_in_one_line(tmp_path):
    done = _run("--dry-run", "--parts", "update,bogus", "--out-dir", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: --parts takes update and/or e2e, got 'update,bogus'"
    assert not (tmp_path / "out").exists()
