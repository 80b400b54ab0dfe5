"""The `qchunk` console script: help, data commands, and one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

QCHUNK = str(Path(sys.executable).parent / "qchunk")


def run(*args, cwd=None):
    return subprocess.run([QCHUNK, *args], capture_output=True, text=True, cwd=cwd, timeout=900)


def assert_one_line_error(p, match):
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert match in lines[0]
    assert "Traceback" not in p.stderr


def test_help_lists_commands():
    p = run("--help")
    assert p.returncode == 0
    for cmd in ("quickstart", "data ogbench", "data inspect", "bench"):
        assert f"qchunk {cmd}" in p.stdout


def test_unknown_command():
    assert_one_line_error(run("frobnicate"), "unknown command 'frobnicate'; commands: train, quickstart")
    assert_one_line_error(run("trian", "--agent", "qc"), "unknown command 'trian' (did you mean 'train'?)")


@pytest.mark.slow
def test_inspect_prints_summary(tiny_ogbench_dir):
    p = run("data", "inspect", str(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"))
    assert p.returncode == 0, p.stderr
    assert "603 in 3 episodes" in p.stdout and "observation dim 55, action dim 5" in p.stdout
    assert "task2: reward mean" in p.stdout
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("data", "inspect", "/nonexistent/file.npz"), "does not exist"),
        (("data", "ogbench", "not-a-dataset-v0", "--episodes", "1"), "unknown OGBench task"),
        (("data", "ogbench", "puzzle-3x3-play-v0", "--episodes", "-4"), "episodes"),
        (("data", "ogbench", "puzzle-3x3-play-v0", "--episodes", "2", "--workers", "0"), "workers"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, match):
    assert_one_line_error(run(*args), match)


def test_corrupt_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "puzzle-3x3-play-v0.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert_one_line_error(run("data", "inspect", str(bad)), "truncated or corrupt")


def test_debug_flag_shows_traceback():
    p = run("data", "inspect", "/nonexistent/file.npz", "--debug")
    assert p.returncode != 0 and "Traceback" in p.stderr


@pytest.mark.slow
def test_quickstart_generates_trains_and_resumes(tmp_path):
    args = ("quickstart", "--episodes", "2", "--offline-steps", "30", "--online-steps", "40", "--eval-every", "40",
            "--eval-episodes", "2", "--workers", "1", "--dataset-dir", str(tmp_path / "data"),
            "--run-dir", str(tmp_path / "run"), "--no-progress")
    p = run(*args)
    assert p.returncode == 0, p.stderr
    assert "generating 2 episodes of puzzle-3x3-play-v0" in p.stdout
    assert "Success rate over 2 episodes" in p.stdout
    rows = (tmp_path / "run" / "eval.csv").read_text().splitlines()
    assert rows[0].startswith("step,phase") and len(rows) == 1 + 2  # the end of each phase: steps 30 and 70
    figure = tmp_path / "run" / "plots" / "learning_curves.png"
    assert f"wrote {figure}" in p.stdout and figure.stat().st_size > 10_000  # the curve the user just made
    assert (tmp_path / "run" / "train.csv").is_file()  # shorter than --log-every: each phase's last step
    again = run(*args)  # idempotent: reuses the data, finds the run finished
    assert again.returncode == 0 and "reusing" in again.stdout and "continuing the run" in again.stdout
    assert (tmp_path / "run" / "eval.csv").read_text().splitlines() == rows
