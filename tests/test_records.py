"""Honest records (issue 27, class 8): a resume does not change what a run recorded (result.json, train.csv,
TensorBoard), tables print what was measured, and every file qchunk writes gets a normal write's permissions."""

import csv
import dataclasses
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from conftest import TINY_TASK
from qchunk.cli import main
from qchunk.experiments.grid import RunSpec
from qchunk.experiments.status_table import RunStatus, format_table, result_text
from qchunk.training import TrainConfig, train
from qchunk.training.config import AgentOverrides
from test_plot_report import make_run
from test_training import TIMING_COLUMNS, read_rows

#: A umask other than the usual 022, so that a hard-coded mode or a private temporary file shows.
UMASK = 0o002


def tiny(dataset_dir, **changes) -> TrainConfig:
    """20 offline steps, then 30 online steps in 10-step episodes; checkpoints at global steps 10 ... 50 (the
    two newest kept: 40 and 50); updates start at online step 28, so train.csv rows at online steps 25 and
    20 come before any online update."""
    base = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(dataset_dir), offline_steps=20,
                       online_steps=30, eval_every=10, eval_episodes=1, episode_length=10, start_training=28,
                       log_every=5, checkpoint_every=10, eval_workers=1, progress=False, batch_size=32,
                       overrides=AgentOverrides(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32)))
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def finished_run(tiny_ogbench_dir, tmp_path_factory):
    """A finished run with TensorBoard events, written under umask :data:`UMASK`."""
    run = tmp_path_factory.mktemp("records") / "run"
    old = os.umask(UMASK)
    try:
        train(tiny(tiny_ogbench_dir), run)
    finally:
        os.umask(old)
    return run


def tb_scalars(run: Path) -> list[tuple[str, int, float]]:
    """Every scalar of the run's TensorBoard event files, as (tag, step, value), read from the raw records."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted((run / "tb").glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            out += [(v.tag, event.step, round(v.simple_value, 5)) for v in event.summary.value]
    return out


@pytest.mark.slow
def test_a_resume_from_before_start_training_keeps_train_csv_and_tensorboard(finished_run, tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "result.json").unlink()
    shutil.rmtree(run / "checkpoints" / "step_0000000050")  # resume from global step 40: online step 20 < 28
    train(tiny(tiny_ogbench_dir, resume=True), run)
    assert read_rows(run / "eval.csv") == read_rows(finished_run / "eval.csv")
    assert read_rows(run / "train.csv", drop=TIMING_COLUMNS) == read_rows(finished_run / "train.csv",
                                                                          drop=TIMING_COLUMNS)
    timing = {f"train/{c}" for c in TIMING_COLUMNS} | {f"eval/{c}" for c in TIMING_COLUMNS}
    resumed = [e for e in tb_scalars(run) if e[0] not in timing]
    keys = [(tag, step) for tag, step, _ in resumed]
    assert len(keys) == len(set(keys)), "TensorBoard shows some steps twice after a resume"
    assert sorted(resumed) == sorted(e for e in tb_scalars(finished_run) if e[0] not in timing)


@pytest.mark.slow
def test_resuming_a_finished_run_keeps_its_result(finished_run, tiny_ogbench_dir, tmp_path):
    recorded = json.loads((finished_run / "result.json").read_text())
    assert recorded["online_steps_per_s"] > 0 and recorded["offline_updates_per_s"] > 0
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and "tb" not in p.parts}
    result = train(tiny(tiny_ogbench_dir, resume=True), run)
    assert (run / "result.json").read_bytes() == before[Path("result.json")]
    assert result.online_steps_per_s == recorded["online_steps_per_s"] and result.summary == recorded["summary"]
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and "tb" not in p.parts}
    assert after == before  # nothing of the record changed


def modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in sorted(root.rglob("*"))}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # the video writer starts ffmpeg (fork + exec)
def test_every_file_qchunk_writes_has_a_normal_writes_mode(finished_run, tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    want = {"file": oct(0o666 & ~UMASK), "dir": oct(0o777 & ~UMASK)}
    out = tmp_path / "eval"
    old = os.umask(UMASK)
    try:
        code = main(["eval", str(finished_run), "--episodes", "1", "--video", "--size", "32", "32",
                     "--out", str(out)])
    finally:
        os.umask(old)
    assert code == 0, capsys.readouterr().err
    assert list((out / "videos").glob("*.mp4"))
    for root in (finished_run, out):
        wrong = {name: mode for name, mode in modes(root).items()
                 if mode != want["dir" if (root / name).is_dir() else "file"]}
        assert not wrong, f"not {want}: {wrong}"


def test_a_task_without_success_signal_shows_its_score_not_nan(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": 100, "phase": "online", "success": "nan", "return": "-178.5", "normalized_score": "0.534"}]
    with open(run / "eval.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    spec = RunSpec(env="gym:Hopper-v5", agent="qc-fql", seed=0, settings={})
    status = RunStatus(spec, run, 200, state="finished")
    status.refresh()
    text = format_table([status])
    assert "nan" not in text and "score 0.53" in text and "success" not in text.splitlines()[1], text
    assert "nan" not in result_text(status) and "score 0.53" in result_text(status)
    rows[0].pop("normalized_score")
    with open(run / "eval.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    status.refresh()
    assert "return -178.5" in format_table([status])


def test_report_headers_name_what_was_measured(tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed in range(2):
        run = make_run(root, "gym:Hopper-v5", "qc", seed)
        lines = (run / "eval.csv").read_text().splitlines()
        cols = lines[0].split(",")
        out = [lines[0] + ",normalized_score"]
        for line in lines[1:]:
            values = line.split(",")
            score = values[cols.index("success")]
            values[cols.index("success")] = "nan"
            out.append(",".join(values) + f",{score}")
        (run / "eval.csv").write_text("\n".join(out) + "\n")
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0, capsys.readouterr().err
    text = "\n".join(p.read_text() for p in (tmp_path / "report").glob("*.md"))
    assert text and "normalised score" in text.lower()
    assert "success %" not in text.lower() and "success rate" not in text.lower(), text


def test_the_readme_states_how_far_a_multi_seed_run_drifts_from_single_runs():
    text = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    start = text.index("**Several seeds in one process**")
    paragraph = text[start:text.index("- **", start + 10)]
    assert "up to float rounding" not in paragraph and "equals a single" not in paragraph
    assert "not those of a single run" in paragraph and "5e-3" in paragraph
