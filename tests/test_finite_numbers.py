"""Non-finite numbers (inf, nan) in agent settings are refused at start, naming the field, before any work."""

import math

import pytest

from qchunk.agents import agent_config
from qchunk.agents.config import FlowAgentConfig, SacAgentConfig
from qchunk.cli import main
from qchunk.errors import QchunkError, require_finite


def test_require_finite():
    require_finite(0.5, "--x")
    require_finite(-1e300, "--x")
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(QchunkError, match=r"^--x must be a finite number, got (-?inf|nan); "):
            require_finite(bad, "--x")
    with pytest.raises(QchunkError, match="--x must be a number, got 'a'"):
        require_finite("a", "--x")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("field", ["lr", "discount", "tau", "alpha"])
def test_flow_config_refuses_non_finite(field, value):
    with pytest.raises(QchunkError) as e:
        agent_config("qc", "quick", "puzzle-3x3", **{field: value})
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"bad agent config: {field} must be a finite number, got {value}")


@pytest.mark.parametrize("field", ["init_temperature", "target_entropy_per_dim", "bc_coef", "lr"])
def test_sac_config_refuses_non_finite(field):
    with pytest.raises(QchunkError, match=f"^bad agent config: {field} must be a finite number, got inf"):
        agent_config("rlpd", "quick", "puzzle-3x3", **{field: math.inf})


def test_every_float_field_is_checked():
    # Any float field of either family, now or added later, is covered (the check walks the fields).
    for cls in (FlowAgentConfig, SacAgentConfig):
        base = cls()
        floats = [name for name in vars(base) if isinstance(getattr(base, name), float)]
        assert {"lr", "discount", "tau"} <= set(floats)
        for name in floats:
            with pytest.raises(QchunkError, match=f"{name} must be a finite number"):
                base.replace(**{name: math.nan})


def test_train_lr_inf_exits_2_and_writes_nothing(tiny_ogbench_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "--agent", "qc", "--env", "puzzle-3x3-play-singletask-task2-v0", "--preset", "quick",
                 "--dataset-dir", str(tiny_ogbench_dir), "--lr", "inf", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "lr must be a finite number, got inf" in err[0]
    assert not run_dir.exists()
