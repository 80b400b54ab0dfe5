"""One grammar for numbers, seeds and names (issue 27, class 7): every command takes seed lists and counts the
same way, every name option suggests the nearest valid name, and a ``--resume`` with changed settings names
each difference with its two values on one short line.

The CLI runs in-process (``qchunk.cli.main``); ``--dry-run`` keeps ``train`` and ``sweep`` to config
resolution, so nothing trains."""

import dataclasses
import json

import pytest

from conftest import TINY_TASK
from qchunk.agents import agent_config
from qchunk.cli import main
from qchunk.errors import QchunkError
from qchunk.grammar import parse_count, parse_seeds
from qchunk.training import RunDir, TrainConfig
from qchunk.training.config import AgentOverrides
from test_cli_papercuts import one_line_error
from test_plot_report import make_run

CUBE = "cube-double-play-singletask-task2-v0"


@pytest.mark.parametrize(("text", "seeds"), [
    ("0-3", [0, 1, 2, 3]), ("0..3", [0, 1, 2, 3]), ("{0..3}", [0, 1, 2, 3]), ("0,3,5", [0, 3, 5]),
    ("0 1 2", [0, 1, 2]), ("0-2,7", [0, 1, 2, 7]), ("5", [5]),
])
def test_seed_lists_have_one_grammar(text, seeds):
    assert parse_seeds(text) == parse_seeds([text]) == parse_seeds([(text,)]) == seeds


@pytest.mark.parametrize(("text", "match"), [
    ("3-1", "end is below the start"), ("0,0", "gives seed 0 twice"), ("0-2,1", "gives seed 1 twice"),
    ("-1", "seeds are >= 0"), ("a", "bad seed 'a'"), ("", "names no seed"), ("1.5", "bad seed '1.5'"),
])
def test_bad_seed_lists_are_one_line(text, match):
    with pytest.raises(QchunkError, match=match):
        parse_seeds(text)


@pytest.mark.parametrize(("text", "value"), [
    ("1000000", 1_000_000), ("1_000_000", 1_000_000), ("1e6", 1_000_000), ("2.5e3", 2500), ("1E3", 1000),
    ("0", 0), ("1e26", 10**26),
])
def test_counts_have_one_grammar(text, value):
    assert parse_count(text, "--x") == value


@pytest.mark.parametrize(("text", "match"), [("1.5", "not a whole number"), ("1e-3", "not a whole number"),
                                             ("abc", "is not an integer"), ("1e", "is not an integer")])
def test_bad_counts_are_one_line(text, match):
    with pytest.raises(QchunkError, match=match):
        parse_count(text, "--x")


def _dry_run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("seeds", ["0..1", "0-1", "0,1", "{0..1}"])
def test_train_and_sweep_take_the_same_seed_lists(capsys, tmp_path, seeds):
    plan = json.loads(_dry_run(capsys, ["train", "--agent", "qc", "--env", CUBE, "--seeds", seeds, "--dry-run",
                                        "--run-dir", str(tmp_path / "r")]))
    assert plan["seeds"] == [0, 1]
    out = _dry_run(capsys, ["sweep", "--agents", "qc", "--envs", CUBE, "--seeds", seeds, "--dry-run",
                            "--out", str(tmp_path / "s")])
    assert "seeds 0,1" in out


@pytest.mark.parametrize("count", ["1e6", "1_000_000", "1000000"])
def test_every_integer_option_takes_the_same_counts(capsys, tmp_path, count):
    plan = json.loads(_dry_run(capsys, ["train", "--agent", "qc", "--env", CUBE, "--dry-run", "--offline-steps",
                                        count, "--actor-hidden-dims", "2.56e2", "256", f"--eval-every={count}",
                                        "--run-dir", str(tmp_path / "r")]))
    assert plan["train"]["offline_steps"] == plan["train"]["eval_every"] == 1_000_000
    assert plan["agent"]["actor_hidden_dims"] == [256, 256]
    out = _dry_run(capsys, ["sweep", "--agents", "qc", "--envs", CUBE, "--seeds", "0", "--dry-run", "--set",
                            f"offline_steps={count}", "--out", str(tmp_path / "s")])
    assert "offline_steps=1000000" in out


def test_a_count_that_is_not_whole_is_one_line_everywhere(capsys, tmp_path):
    one_line_error(capsys, ["train", "--agent", "qc", "--env", CUBE, "--dry-run", "--online-steps", "2.5"],
                   "--online-steps: '2.5' is not a whole number")
    one_line_error(capsys, ["sweep", "--agents", "qc", "--envs", CUBE, "--dry-run", "--set", "online_steps=2.5",
                            "--out", str(tmp_path / "s")], "--set online_steps: '2.5' is not a whole number")
    one_line_error(capsys, ["eval", str(tmp_path), "--episodes", "1.5"], "--episodes: '1.5' is not a whole number")


@pytest.fixture
def sweep_dir(tmp_path):
    make_run(tmp_path, CUBE, "qc", 0)
    return tmp_path


@pytest.mark.parametrize(("argv", "match"), [
    (["sweep", "--agents", "qc-fq", "--envs", CUBE, "--dry-run"], "unknown agent 'qc-fq' (did you mean 'qc-fql'?)"),
    (["sweep", "--recipe", "paper-mian", "--dry-run"], "(did you mean 'paper-main'?)"),
    (["sweep", "--agents", "qc", "--envs", CUBE, "--set", "horizn=3", "--dry-run"], "(did you mean 'horizon'?)"),
    (["sweep", "--agents", "qc", "--envs", CUBE, "--set", "preset=quik", "--dry-run"], "(did you mean 'quick'?)"),
    (["sweep", "--agents", "qc", "--envs", "cube-doubel", "--dry-run"], "(did you mean"),
    (["train", "--agent", "qc-fq", "--env", CUBE, "--dry-run"], "(did you mean 'qc-fql'?)"),
    (["train", "--agent", "qc", "--env", "cube-double-play-singletask-task2-v1", "--dry-run"], "(did you mean"),
    (["bench", "--agent", "qc-fq"], "(did you mean 'qc-fql'?)"),
    (["bench", "--agent", "qc", "--domain", "cube-doubel"], "(did you mean 'cube-double'?)"),
    (["plot", "SWEEP", "--reference", "papr"], "unknown --reference 'papr' (did you mean 'paper'?)"),
    (["report", "SWEEP", "--reference", "papr"], "unknown --reference 'papr' (did you mean 'paper'?)"),
    (["plot", "SWEEP", "--by", "horizn"], "(did you mean 'horizon'?)"),
    (["data", "robomimic", "lfit", "--out", "OUT"], "no scripted policy for 'lfit' (did you mean 'lift'?)"),
    (["data", "ogbench", "puzzle-3x3-paly-v0", "--out", "OUT"], "(did you mean"),
])
def test_every_name_option_suggests_the_nearest_name(capsys, sweep_dir, tmp_path, argv, match):
    argv = [str(sweep_dir) if a == "SWEEP" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    if argv[0] == "plot":
        argv += ["--out", str(tmp_path / "fig.png")]
    if argv[0] == "report":
        argv += ["--out", str(tmp_path / "report")]
    if argv[0] == "sweep":
        argv += ["--out", str(tmp_path / "s")]
    one_line_error(capsys, argv, match)


def test_resume_with_changed_settings_names_each_difference_on_one_short_line(tmp_path):
    cfg = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", offline_steps=100, online_steps=100,
                      dataset_dir=str(tmp_path / "a-long-dataset-directory-name" / ("x" * 80)),
                      overrides=AgentOverrides(actor_hidden_dims=(32, 32), horizon=5)).resolved()
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cfg, agent_config("qc-fql", "quick", "puzzle-3x3", horizon=5), 10, 4)
    changed = dataclasses.replace(cfg, resume=True, batch_size=16, dataset_dir=str(tmp_path / "other"),
                                  overrides=AgentOverrides(actor_hidden_dims=(64, 64), horizon=3)).resolved()
    with pytest.raises(QchunkError) as e:
        run.claim(changed, say=lambda line: None)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, (len(msg), msg)
    assert "horizon: 5 there, 3 now" in msg and "actor_hidden_dims: 32,32 there, 64,64 now" in msg
    assert "batch_size: 256 there, 16 now" in msg and "dataset_dir: " in msg
    assert "overrides" not in msg and "{" not in msg  # agent fields by name, not the overrides dict
