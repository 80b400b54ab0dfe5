"""Time the README's main job against the authors' ``main.py`` on the same data and settings, one after the other.

Run it with qchunk's Python (``.venv/bin/python``); it runs the authors' script with their environment::

    .venv/bin/python tools/fidelity/main_job_authors.py --qc PATH/TO/qc --authors-python AUTHORS_PY \
        --dataset-dir data/quickstart --json bench/results/mainjob.json

The main job is ``qchunk quickstart`` on an existing dataset (qc-fql, quick preset, puzzle-3x3 task 1, dense
reward, 20K offline + 20K online steps, 50 evaluation episodes at 10K and 20K of each phase). The authors' run is
github:ColinQiyangLi/qc's ``main.py`` with the same agent (``agents/acfql.py``, alpha 300, 2x256 networks),
data, steps, start of online training (5000) and number of evaluations: their script evaluates at step
``offline_steps - 1`` and every ``eval_interval`` steps of each phase, so ``--eval_interval=20000`` gives two
evaluations per phase (at 19999 and 20000), four in all as qchunk's. Their script needs two things our
environment lacks, both supplied without touching their code: an OGBench data directory (a temporary ``HOME``
whose ``.ogbench/data`` links to ``--dataset-dir``'s files) and a W&B account (``sitecustomize`` in a temporary
directory makes ``wandb.init`` run in mode ``disabled``; their module-level ``robomimic`` import gets an empty
stand-in package, which OGBench runs never call). Wall time is the process's, start to exit, data loading and
compilation included, for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "puzzle-3x3-play-singletask-task1-v0"
DATASET = "puzzle-3x3-play-v0"
SITECUSTOMIZE = '''import wandb

_init = wandb.init


def _disabled(*args, **kwargs):
    kwargs["mode"] = "disabled"
    return _init(*args, **kwargs)


wandb.init = _disabled
'''


def authors_command(python: str, steps: int) -> list[str]:
    """The authors' ``main.py`` at the main job's settings."""
    return [python, "main.py", f"--env_name={TASK}", "--sparse=False", "--horizon_length=5",
            f"--offline_steps={steps}", f"--online_steps={steps}", f"--eval_interval={steps}", "--eval_episodes=50",
            "--start_training=5000", "--agent.alpha=300", "--agent.actor_hidden_dims=(256,256)",
            "--agent.value_hidden_dims=(256,256)"]


def authors_environment(root: Path, dataset_dir: Path) -> dict[str, str]:
    """``HOME`` with the OGBench data links, and the stand-ins on ``PYTHONPATH``."""
    data = root / "home" / ".ogbench" / "data"
    data.mkdir(parents=True)
    for suffix in ("", "-val"):
        (data / f"{DATASET}{suffix}.npz").symlink_to((dataset_dir / f"{DATASET}{suffix}.npz").resolve())
    stubs = root / "stubs"
    (stubs / "robomimic" / "utils").mkdir(parents=True)
    (stubs / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (stubs / "robomimic" / "__init__.py").write_text("DATASET_REGISTRY = {}\n")
    (stubs / "robomimic" / "utils" / "__init__.py").write_text("")
    for name in ("env_utils", "file_utils"):
        (stubs / "robomimic" / "utils" / f"{name}.py").write_text("")
    (stubs / "robomimic" / "utils" / "obs_utils.py").write_text(
        "def initialize_obs_modality_mapping_from_dict(mapping):\n    return None\n")
    return {**os.environ, "HOME": str(root / "home"), "PYTHONPATH": str(stubs), "JAX_PLATFORMS": "cpu"}


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run ``cmd``, its output to ``log``; the wall time in seconds. Raises on a non-zero exit."""
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if rc != 0:
        tail = log.read_text()[-1500:]
        # The authors' script ends by writing the W&B run's URL, None in disabled mode: training is over by then.
        if "token.tk" not in tail and "write() argument must be str, not None" not in tail:
            raise RuntimeError(f"{cmd[:2]} failed (exit {rc}); see {log}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qc", type=Path, required=True, help="checkout of github:ColinQiyangLi/qc")
    parser.add_argument("--authors-python", required=True, help="Python of the authors' environment")
    parser.add_argument("--dataset-dir", type=Path, default=Path("data/quickstart"),
                        help=f"directory with {DATASET}.npz and its -val file (default %(default)s)")
    parser.add_argument("--steps", type=int, default=20_000, help="offline and online steps (default 20000)")
    parser.add_argument("--json", type=Path, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    problems = []
    if not (args.qc / "main.py").is_file() or not (args.qc / "agents" / "acfql.py").is_file():
        problems.append(f"--qc {args.qc}: not a checkout of github:ColinQiyangLi/qc")
    if shutil.which(args.authors_python) is None:
        problems.append(f"--authors-python {args.authors_python}: not an executable")
    if not all((args.dataset_dir / f"{DATASET}{s}.npz").is_file() for s in ("", "-val")):
        problems.append(f"--dataset-dir {args.dataset_dir}: no {DATASET}.npz and {DATASET}-val.npz")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_authors import foreign_json, write_json

    if foreign_json(args.json):
        problems.append(foreign_json(args.json))
    if args.steps < 5001:
        problems.append("--steps must exceed 5000 (the start of online training)")
    if problems:
        print(f"error: {'; '.join(problems)}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="qchunk-mainjob-"))
    env = authors_environment(root, args.dataset_dir)
    load_before = os.getloadavg()[0]
    print(f"[mainjob] the authors' main.py ({args.steps} + {args.steps} steps); log {root / 'authors.log'}", flush=True)
    authors_s = timed([*authors_command(args.authors_python, args.steps), f"--save_dir={root / 'exp'}"],
                      args.qc, env, root / "authors.log")
    print(f"[mainjob] authors: {authors_s / 60:.1f} min; qchunk quickstart; log {root / 'qchunk.log'}", flush=True)
    qchunk = [str(Path(sys.executable).parent / "qchunk"), "quickstart", "--dataset-dir",
              str(args.dataset_dir.resolve()), "--run-dir", str(root / "run"), "--offline-steps", str(args.steps),
              "--online-steps", str(args.steps), "--eval-every", str(args.steps // 2), "--no-progress"]
    qchunk_s = timed(qchunk, Path.cwd(), {**os.environ, "JAX_PLATFORMS": "cpu"}, root / "qchunk.log")
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "load_avg_1m_before": load_before, "load_avg_1m_after":
              os.getloadavg()[0], "steps": args.steps, "authors_command": authors_command("python", args.steps),
              "qchunk_command": ["qchunk", *qchunk[1:]], "authors_wall_s": authors_s, "qchunk_wall_s": qchunk_s,
              "ratio": qchunk_s / authors_s, "logs": str(root)}
    print(f"[mainjob] qchunk {qchunk_s / 60:.1f} min vs the authors' {authors_s / 60:.1f} min: "
          f"x{qchunk_s / authors_s:.2f}", flush=True)
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
