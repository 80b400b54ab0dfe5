"""Unwritable output paths are refused before any work: one line naming the flag, exit 2, no traceback.

``/proc/x`` cannot be created even by root, and nothing can be created under an existing *file*; both are
used. Each command is asked for far more work than the test waits for, so a check that came after the
work would time out instead of returning.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qchunk.errors import QchunkError
from qchunk.fileio import require_writable
from test_plot_report import make_run

QCHUNK = str(Path(sys.executable).with_name("qchunk"))


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("not a directory\n")
    return path


def qchunk(*args, timeout=120) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    p = subprocess.run([QCHUNK, *args], capture_output=True, text=True, timeout=timeout)
    return p, time.perf_counter() - t0


def assert_refused(p: subprocess.CompletedProcess, flag: str, path) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag} {path}"), p.stderr
    return lines[0]


# ------------------------------------------------------------------------------------- the helper
def test_require_writable_accepts_new_and_existing_paths(tmp_path):
    (tmp_path / "dir").mkdir()
    assert require_writable(tmp_path / "a" / "b" / "c.json", "--json", is_dir=False) == tmp_path / "a/b/c.json"
    require_writable(tmp_path / "dir", "--out", is_dir=True)
    require_writable(tmp_path / "new" / "dir", "--out", is_dir=True)
    assert sorted(os.listdir(tmp_path)) == ["dir"]  # nothing created, no probe file left behind
    assert os.listdir(tmp_path / "dir") == []


@pytest.mark.parametrize(
    ("path", "is_dir", "match"),
    [
        ("/proc/x", False, "--flag /proc/x cannot be written (/proc: "),
        ("/proc/x/y/z", True, "--flag /proc/x/y/z cannot be written (/proc: "),
        ("{file}/sub", True, "lies under {file}, which is a file"),
        ("{file}/sub/out.json", False, "lies under {file}, which is a file"),
        ("{file}", True, "is a file, not a directory"),
        ("{dir}", False, "is a directory; give a file name"),
    ],
)
def test_require_writable_refuses(tmp_path, a_file, path, is_dir, match):
    path = path.format(file=a_file, dir=tmp_path)
    with pytest.raises(QchunkError) as e:
        require_writable(path, "--flag", is_dir=is_dir)
    message = str(e.value)
    assert "\n" not in message and message.startswith("--flag ") and match.format(file=a_file) in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_require_writable_refuses_a_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(QchunkError, match="cannot be written"):
            require_writable(ro / "x.json", "--json", is_dir=False)
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------------------------- the commands
@pytest.mark.slow
def test_bench_json_is_checked_before_the_benchmark(a_file):
    # A million paper-preset updates would take hours: returning at all means nothing was measured.
    for bad in ("/proc/x", f"{a_file}/sub.json"):
        p, seconds = qchunk("bench", "--agent", "qc", "--preset", "paper", "--steps", "1000000", "--json", bad)
        assert_refused(p, "--json", bad)
        assert p.stdout == "" and "compil" not in p.stderr.lower()
        assert seconds < 60


@pytest.mark.slow
def test_bench_suite_out_dir_is_checked_before_the_suites(a_file):
    p, _ = qchunk("bench", "--suite", "all", "--out-dir", "/proc/x")
    assert_refused(p, "--out-dir", "/proc/x")
    assert "[bench]" not in p.stdout  # no suite started
    p, _ = qchunk("bench", "--suite", "data", "--out-dir", str(a_file.parent / "results"),
                  "--dataset-dir", f"{a_file}/cache")
    assert_refused(p, "--dataset-dir", f"{a_file}/cache")
    assert "[bench]" not in p.stdout and not (a_file.parent / "results").exists()


def test_data_robomimic_out_is_checked_before_recording(a_file):
    pytest.importorskip("robosuite")
    for bad in ("/proc/x", str(a_file)):
        p, seconds = qchunk("data", "robomimic", "lift", "--episodes", "100000", "--out", bad, "--no-progress")
        line = assert_refused(p, "--out", bad)
        assert "lift/mh/low_dim_v15.hdf5" in line and seconds < 60


@pytest.mark.slow
def test_plot_out_is_checked_before_plotting(tmp_path, a_file):
    make_run(tmp_path / "runs", "cube-double-play-singletask-task1-v0", "qc", 0)
    for bad, shown in (("/proc/x/fig", "/proc/x/fig.png"), (f"{a_file}/fig.svg", f"{a_file}/fig.png")):
        p, _ = qchunk("plot", str(tmp_path / "runs"), "--out", bad)
        assert_refused(p, "--out", shown)
    # A run without evaluations makes the plot itself fail: the path is refused before that point.
    run = make_run(tmp_path / "empty", "cube-double-play-singletask-task1-v0", "qc", 0, upto=0)
    p, _ = qchunk("plot", str(run), "--out", "/proc/x/fig")
    assert_refused(p, "--out", "/proc/x/fig.png")
    p, _ = qchunk("plot", str(run), "--out", str(tmp_path / "ok" / "fig"))  # a good path gets to that failure
    assert p.returncode == 2 and "no evaluations yet" in p.stderr


@pytest.mark.slow
def test_report_out_is_checked_before_the_report(tmp_path, a_file):
    root = tmp_path / "sweep"
    for seed in range(2):
        make_run(root, "cube-double-play-singletask-task1-v0", "qc", seed)
    for bad in ("/proc/x", str(a_file), f"{a_file}/report"):
        p, _ = qchunk("report", str(root), "--out", bad)
        assert_refused(p, "--out", bad)
    assert not (root / "report").exists()
    p, _ = qchunk("report", str(root), "--out", str(tmp_path / "rep"), "--resamples", "50")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rep" / "report.md").is_file()
