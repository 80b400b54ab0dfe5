"""`qchunk eval`: re-evaluating a checkpoint of a tiny real run, with and without MP4 videos; bad input."""

import csv
import json

import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.cli import main
from qchunk.training import TrainConfig, train
from qchunk.training.config import AgentOverrides


@pytest.fixture(scope="module")
def tiny_run(tiny_ogbench_dir, tmp_path_factory):
    """20 offline steps of qc-fql with 32-wide networks; checkpoints at steps 10 and 20; 12-step episodes."""
    run = tmp_path_factory.mktemp("eval") / "run"
    train(TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(tiny_ogbench_dir),
                      offline_steps=20, online_steps=0, eval_every=20, eval_episodes=1, episode_length=12,
                      log_every=10, checkpoint_every=10, eval_workers=1, progress=False, tensorboard=False,
                      overrides=AgentOverrides(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32)),
                      batch_size=32), run)
    return run


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # the video reader starts ffmpeg (fork + exec)
def test_eval_writes_episodes_and_summary_and_videos(tiny_run, tmp_path, capsys):
    assert main(["eval", str(tiny_run), "--episodes", "2", "--workers", "1"]) == 0
    out = tiny_run / "eval" / "step_0000000020"  # the newest checkpoint by default
    rows = _rows(out / "episodes.csv")
    assert [r["episode"] for r in rows] == ["0", "1"] and len({r["seed"] for r in rows}) == 2
    for r in rows:
        assert r["success"] in ("0", "1") and 1 <= int(r["length"]) <= 12 and float(r["return"]) >= -12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint_step"] == 20 and summary["episodes"] == 2 and summary["video"] is None
    assert summary["episode_length"] == np.mean([int(r["length"]) for r in rows])
    assert "checkpoint at step 20" in capsys.readouterr().out

    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    video_out = tmp_path / "with-video"
    assert main(["eval", str(tiny_run), "--episodes", "2", "--video", "--size", "64", "96",
                 "--out", str(video_out)]) == 0
    # rendering in this process leaves the episodes unchanged
    assert _rows(video_out / "episodes.csv") == rows
    summary = json.loads((video_out / "summary.json").read_text())
    assert summary["video"]["files"] == ["videos/episode_000.mp4", "videos/episode_001.mp4"]
    for r in rows:
        path = video_out / "videos" / f"episode_{int(r['episode']):03d}.mp4"
        assert path.stat().st_size > 0
        with imageio.get_reader(path) as reader:
            frames = [f for f in reader]
        assert len(frames) == int(r["length"])  # one frame per environment step
        assert frames[0].shape == (64, 96, 3) and frames[-1].std() > 0
    assert not list((video_out / "videos").glob(".*"))  # no temporary files left behind


def test_eval_older_checkpoint(tiny_run, tmp_path):
    out = tmp_path / "ten"
    assert main(["eval", str(tiny_run), "--checkpoint", "10", "--episodes", "1", "--workers", "1",
                 "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["checkpoint_step"] == 10


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "does not exist"),
    (["{run}", "--checkpoint", "999"], "no checkpoint at step 999 (available: 10, 20)"),
    (["{run}", "--episodes", "0"], "--episodes must be >= 1"),
    (["{tmp}"], "not a qchunk run directory"),
])
def test_eval_bad_input_is_one_line(tiny_run, tmp_path, capsys, argv, message):
    fill = {"missing": str(tmp_path / "nope"), "run": str(tiny_run), "tmp": str(tmp_path)}
    assert main(["eval", *(a.format(**fill) for a in argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
