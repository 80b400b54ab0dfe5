"""Faults of the machine, for real: a run on a small tmpfs fills the disk. The failed write is one line
(exit 2, no traceback), the run directory keeps no debris (no partial checkpoint, no temporary file), and
once the disk has room the resume ends with the curves of an uninterrupted run. Needs root (to mount a
tmpfs); skipped with the reason elsewhere."""

from __future__ import annotations

import os
import subprocess

import pytest

from test_signals import args, same_curves


@pytest.fixture(scope="module")
def uninterrupted(tiny_ogbench_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("machine-faults") / "run"
    done = subprocess.run(args(tiny_ogbench_dir, run), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return run


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 600 KiB at ``tmp_path/disk``: room for the offline checkpoint and the first online one,
    not for the second (its replay buffer), so the run's last checkpoint fails. ``grow()`` makes room."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)

    try:
        yield disk, grow
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_leaves_no_debris_and_resumes_identically(tiny_ogbench_dir, uninterrupted, small_disk):
    disk, grow = small_disk
    run = disk / "run"
    cmd = args(tiny_ogbench_dir, run)
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert full.returncode == 2, full.stderr
    assert full.stderr.strip() == (f"error: {run}: No space left on device at step 220; the run stopped; once it "
                                   "can write again, --resume continues exactly from its checkpoint at step 120")
    debris = [p for p in run.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    assert debris == []
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000000020", "step_0000000120"]
    grow()
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "warning" not in done.stderr
    same_curves(run, uninterrupted)
