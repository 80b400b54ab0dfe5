"""The first hour on the command line (issue 16): bare on/off flags, one-line parse errors with "did you
mean", required run directories, ``plot --out`` and refusals of sizes that cannot work.

Everything runs the real CLI in-process (``qchunk.cli.main``); ``--dry-run`` keeps ``train`` and ``sweep``
to config resolution, so nothing trains."""

import json

import pytest

from qchunk.agents import agent_config
from qchunk.cli import COMMANDS, main
from qchunk.errors import QchunkError, did_you_mean
from qchunk.plotting.curves import figure_paths
from test_plot_report import make_run

CUBE = "cube-double-play-singletask-task2-v0"  # its paper default is the dense reward


def one_line_error(capsys, argv, match):
    """Run ``qchunk ARGV``: exit status 2, stderr exactly one line ``error: ...`` containing ``match``."""
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    return lines[0]


def dry_run(capsys, *argv):
    assert main(["train", "--dry-run", "--preset", "quick", *argv]) == 0
    return json.loads(capsys.readouterr().out)


# 1. Boolean options are bare flags; unset keeps the paper's per-domain (or preset) default.

@pytest.mark.parametrize(("flags", "sparse"), [((), False), (("--sparse",), True), (("--no-sparse",), False)])
def test_sparse_is_a_bare_flag_and_unset_keeps_the_domain_default(capsys, flags, sparse):
    assert dry_run(capsys, "--env", CUBE, *flags)["train"]["sparse"] is sparse


def test_agent_boolean_overrides_are_bare_flags(capsys):
    assert dry_run(capsys)["agent"]["critic_layer_norm"] is True  # the preset's value
    cfg = dry_run(capsys, "--no-critic-layer-norm", "--actor-layer-norm")
    assert cfg["agent"]["critic_layer_norm"] is False and cfg["agent"]["actor_layer_norm"] is True


def test_a_value_after_a_flag_is_one_line_naming_both_spellings(capsys):
    one_line_error(capsys, ["train", "--sparse", "true"], "write --sparse or --no-sparse")


def test_no_command_shows_a_boolean_as_a_true_false_choice(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([*name.split(), "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and "--help" in out, name
        assert "True,False" not in out and "False,True" not in out, f"qchunk {name} --help: {out}"


# 2. Option-parsing errors: one line naming the option and what was wrong.

@pytest.mark.parametrize(("argv", "match"), [
    (["--offline-steps", "abc"], "--offline-steps: 'abc' is not an integer"),
    (["--offline-steps", "1.5e0"], "--offline-steps: '1.5e0' is not a whole number"),
    (["--lr", "fast"], "--lr: 'fast' is not a number"),
    (["--preset", "quik"], "--preset: 'quik' is not a choice (did you mean 'quick'?); choose one of: paper, quick"),
    (["--offline-stpes", "3"], "unknown option --offline-stpes (did you mean '--offline-steps'?)"),
    (["--frobnicate"], "unknown option --frobnicate"),
    (["--offline-steps"], "--offline-steps needs a value (an integer)"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_parse_errors_are_one_line(capsys, argv, match):
    one_line_error(capsys, ["train", *argv], match)


def test_help_still_prints_the_full_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--offline-steps" in out and "--no-sparse" in out and len(out.splitlines()) > 50


# 3. Unknown names: one line with "did you mean".

@pytest.mark.parametrize(("argv", "match"), [
    (["trian", "--agent", "qc"], "unknown command 'trian' (did you mean 'train'?)"),
    (["data", "ogbenc", "x"], "unknown command 'data ogbenc' (did you mean 'data ogbench'?)"),
    (["data"], "qchunk data needs a subcommand"),
    (["train", "--dry-run", "--agent", "qc-fq"], "unknown agent 'qc-fq' (did you mean 'qc-fql'?)"),
    (["train", "--dry-run", "--env", "puzle-3x3-play-singletask-task2-v0"],
     "(did you mean 'puzzle-3x3-play-singletask-task2-v0'?)"),
    (["sweep", "--recipe", "paper-mian", "--dry-run"], "unknown recipe 'paper-mian' (did you mean 'paper-main'?)"),
])
def test_unknown_names_suggest_the_closest(capsys, argv, match):
    one_line_error(capsys, argv, match)


def test_did_you_mean():
    assert did_you_mean("quik", ("paper", "quick")) == " (did you mean 'quick'?)"
    assert did_you_mean("Paper", ("paper", "quick")) == " (did you mean 'paper'?)"
    assert did_you_mean("zzz", ("paper", "quick")) == ""
    with pytest.raises(QchunkError, match=r"unknown preset 'papr' \(did you mean 'paper'\?\)"):
        agent_config("qc", "papr")


# 4. plot / analyze trajectories without a run directory.

@pytest.mark.parametrize("command", ["plot", "analyze trajectories"])
def test_a_missing_run_directory_is_a_clear_error(capsys, command):
    one_line_error(capsys, command.split(), "needs at least one")
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    out = capsys.readouterr().out
    assert "(required: one or more)" in out and "(default: )" not in out


# 5. plot --out: the extension is honoured or refused; a directory gets the figure inside it.

def test_figure_paths_rule(tmp_path):
    assert figure_paths(tmp_path / "fig.png") == [tmp_path / "fig.png", tmp_path / "fig.svg"]
    assert figure_paths(tmp_path / "fig") == [tmp_path / "fig.png", tmp_path / "fig.svg"]
    assert figure_paths(tmp_path / "fig.pdf") == [tmp_path / "fig.pdf"]
    assert figure_paths(tmp_path) == [tmp_path / "learning_curves.png", tmp_path / "learning_curves.svg"]
    assert figure_paths(f"{tmp_path}/new/")[0] == tmp_path / "new" / "learning_curves.png"
    with pytest.raises(QchunkError, match=r"cannot write a \.gif figure"):
        figure_paths(tmp_path / "fig.gif")


def test_plot_out_honours_jpg_and_directories(tmp_path, capsys):
    run = make_run(tmp_path / "runs", "puzzle-3x3-play-singletask-task2-v0", "qc", 0)
    args = ["plot", str(run), "--resamples", "20"]
    assert main([*args, "--out", str(tmp_path / "fig.jpg")]) == 0
    assert (tmp_path / "fig.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG, and nothing else beside it
    assert not (tmp_path / "fig.png").exists() and not (tmp_path / "fig.svg").exists()
    (tmp_path / "figs").mkdir()
    assert main([*args, "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["learning_curves.png", "learning_curves.svg"]
    assert not (tmp_path / "figs.png").exists()
    capsys.readouterr()
    one_line_error(capsys, [*args, "--out", str(tmp_path / "fig.gif")], "cannot write a .gif figure")
    assert not list(tmp_path.glob("fig.gif*"))


# 6. Sizes that cannot work are refused before any work; what merely looks wrong is a warning.

@pytest.mark.parametrize(("argv", "match"), [
    (["--buffer-size", "1"], "--buffer-size 1 cannot hold one chunk of 5 transitions"),
    (["--offline-steps", str(10**26)], "is more than a run can count"),
    (["--online-steps", str(10**9), "--utd", "5"], "more than the agents' update counter holds"),
])
def test_impossible_sizes_are_refused(capsys, tmp_path, argv, match):
    one_line_error(capsys, ["train", "--preset", "quick", "--run-dir", str(tmp_path / "run"), *argv], match)
    assert not (tmp_path / "run").exists()


def test_a_sweep_refuses_an_absurd_step_count(capsys, tmp_path):
    one_line_error(capsys, ["sweep", "--agents", "qc", "--envs", "puzzle-3x3-play-singletask-task2-v0", "--seeds", "0",
                            "--set", "offline_steps=1e26", "--dry-run", "--out", str(tmp_path / "sweep")],
                   "is more than a run can count")


def test_what_looks_wrong_is_a_warning(capsys):
    assert main(["train", "--dry-run", "--preset", "quick", "--online-steps", "40", "--buffer-size", "100"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(ln.startswith("warning: --start-training 5,000 > --online-steps 40") for ln in err), err
    assert any(ln.startswith("warning: --buffer-size 100 is smaller than a batch") for ln in err), err


def test_device_sampling_without_offline_steps_says_it_samples_on_the_host(capsys):
    assert main(["train", "--dry-run", "--agent", "rlpd", "--preset", "quick", "--sample-on", "device"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(ln.startswith("warning: --sample-on device gathers offline batches only") for ln in err), err


def test_a_bad_seed_axis_or_scan_block_is_one_line(capsys, tmp_path):
    one_line_error(capsys, ["train", "--preset", "quick", "--seed-axis", "pmap", "--run-dir", str(tmp_path / "r")],
                   "seed-axis")
    one_line_error(capsys, ["train", "--preset", "quick", "--scan-block", "0", "--run-dir", str(tmp_path / "r")],
                   "--scan-block must be >= 1")
    assert not (tmp_path / "r").exists()
