"""Time the authors' update at the sizes ``qchunk bench`` uses, for ratios measured on the same machine and day.

Run it with the authors' environment (as ``record.py``; see ``docs/fidelity.md``) and a checkout of
github:ColinQiyangLi/qam::

    AUTHORS_PY tools/fidelity/bench_authors.py --qam PATH/TO/qam --agent qam --agent rebrac --sizes qam \
        --json bench/results/authors-qam.json

Each agent is the release's agent file with the reproduction script's settings: the common ones of
``experiments/reproduce.py`` (K = 10, batch 256, rho 0.5, h = 5) and the method's row for the domain (read
from the script as data, never executed). ``--sizes qam`` keeps its 4x512 networks, ``quick`` uses 2x256 (what
``qchunk bench --preset quick`` builds). The batch comes from the authors' own ``sample_sequence`` on random
data of cube-double's widths (states 37, actions 5; as ``qchunk bench``). One fresh process per agent; the update is
``agent.update`` under ``jax.jit`` as their ``main.py`` calls it; the first call (compilation) is timed apart,
then ``--steps`` calls, each waited for. Prints one line per agent and writes JSON with the median step.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: qchunk's name -> the reproduction script's method key (its ``agent_files`` gives the agent file).
METHODS = {
    "qam": "QAM", "qam-f": "QAM_FQL", "qam-e": "QAM_EDIT", "fedit": "FEDIT", "dsrl": "DSRL", "qc-fql": "FQL",
    "rebrac": "REBRAC", "fbrac": "FBRAC", "ifql": "IFQL", "fawac": "FAWAC", "bam": "BAM", "cgql": "CGQL",
    "cgql-m": "CGQL_MSE", "cgql-l": "CGQL_LINEX", "qsm": "QSM", "dac": "DAC",
}
#: Where a method's row for cube-double switches part of it off (alpha / edit_scale 0), the domain it is timed on
#: (as ``qchunk bench``; ``qchunk.agents.registry.AgentSpec.bench_domain``).
BENCH_DOMAIN = {"qam-f": "cube-triple", "qam-e": "cube-triple"}
OBS_DIM = 37
"""State width of the synthetic batch, as ``qchunk bench``'s default (cube-double's), whatever the domain."""
ACTION_DIM = 5
HORIZON = 5


MARK = "written-by-qchunk"
"""The ``written_by`` value of every JSON these tools write (qchunk's own mark, ``qchunk.ownership.MARK``)."""


def foreign_json(path: Path | None) -> str | None:
    """An error line when ``path`` exists and is not a JSON document these tools (or qchunk) wrote; else None."""
    if path is None or not path.exists():
        return None
    try:
        ours = json.loads(path.read_text()).get("written_by") == MARK
    except (OSError, ValueError, AttributeError):
        ours = False
    return None if ours else f"--json {path}: the file exists and qchunk did not write it; choose another path"


def write_json(path: Path, doc: dict) -> None:
    """Write ``doc`` (marked as ours) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({**doc, "written_by": MARK}, indent=1) + "\n")
    tmp.replace(path)


def literal(node: ast.AST):
    """A literal, where ``dict(k=v, ...)`` calls count as literal mappings."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {literal(k): literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    return ast.literal_eval(node)


def script_tables(repo: Path) -> tuple[dict, dict]:
    """``agent_params`` and ``agent_files`` of ``experiments/reproduce.py``, read as literals."""
    tree = ast.parse((repo / "experiments" / "reproduce.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("agent_params", "agent_files"):
                found[name] = literal(node.value)
    return found["agent_params"], found["agent_files"]


def settings(repo: Path, agent: str, sizes: str, domain: str) -> tuple[str, dict]:
    """The agent module and the config overrides the reproduction script gives ``agent`` on ``domain``."""
    params, files = script_tables(repo)
    key = METHODS[agent]
    row = params[key][f"{domain}-play"]
    hidden = (512, 512, 512, 512) if sizes == "qam" else (256, 256)
    common = {"num_qs": 10, "discount": 0.99, "action_chunking": True, "actor_hidden_dims": hidden,
              "value_hidden_dims": hidden, "batch_size": 256, "rho": 0.5}
    module = files[key].removesuffix(".py").replace("/", ".")
    return module, {**common, **row}


def time_one(agent_name: str, repo: Path, sizes: str, domain: str, steps: int) -> dict:
    """Time ``agent.update`` of one agent (runs in its own process)."""
    import jax

    sys.path.insert(0, str(repo))
    module_name, overrides = settings(repo, agent_name, sizes, domain)
    module = importlib.import_module(module_name)
    datasets = importlib.import_module("utils.datasets")
    config = module.get_config()
    config.update(overrides)
    config["horizon_length"] = HORIZON
    cls = next(getattr(module, n) for n in dir(module) if n.endswith("Agent") and n != "Agent"
               and isinstance(getattr(module, n), type) and hasattr(getattr(module, n), "create"))
    rs = np.random.RandomState(0)
    n, obs_dim = 10_000, OBS_DIM
    terminals = np.zeros(n, np.float32)
    terminals[999::1000] = 1.0
    obs = rs.normal(size=(n, obs_dim)).astype(np.float32)
    data = {"observations": obs, "next_observations": np.roll(obs, -1, 0),
            "actions": np.tanh(rs.normal(size=(n, ACTION_DIM))).astype(np.float32),
            "rewards": rs.normal(size=n).astype(np.float32), "terminals": terminals,
            "masks": np.ones(n, np.float32)}
    dataset = datasets.Dataset.create(**data)
    agent = cls.create(0, obs[:1][0], data["actions"][0], config)
    batches = [dataset.sample_sequence(config["batch_size"], sequence_length=HORIZON, discount=config["discount"])
               for _ in range(steps + 1)]
    start = time.perf_counter()
    agent, info = agent.update(batches[0])
    jax.block_until_ready(info)
    compile_s = time.perf_counter() - start
    times = []
    for batch in batches[1:]:
        start = time.perf_counter()
        agent, info = agent.update(batch)
        jax.block_until_ready(info)
        times.append(time.perf_counter() - start)
    finite = all(bool(np.isfinite(np.asarray(v)).all()) for v in jax.tree_util.tree_leaves(info))
    median = float(np.median(times))
    return {"agent": agent_name, "method": METHODS[agent_name], "module": module_name, "class": cls.__name__,
            "sizes": sizes, "domain": domain, "config": {k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in overrides.items()},
            "compile_s": compile_s, "step_ms_median": 1e3 * median, "updates_per_s": 1.0 / median,
            "steps": steps, "metrics_finite": finite}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qam", type=Path, required=True, help="checkout of github:ColinQiyangLi/qam")
    parser.add_argument("--agent", action="append", default=[], help=f"qchunk agent name ({', '.join(METHODS)})")
    parser.add_argument("--sizes", choices=("qam", "quick"), default="qam",
                        help="4x512 networks (the QAM protocol) or 2x256 (qchunk's quick preset)")
    parser.add_argument("--steps", type=int, default=20, help="timed updates after the first (default 20)")
    parser.add_argument("--json", type=Path, help="write the results here (atomically)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.qam / "agents").is_dir() or not (args.qam / "experiments" / "reproduce.py").is_file():
        print(f"error: --qam {args.qam}: not a checkout of github:ColinQiyangLi/qam", file=sys.stderr)
        return 2
    unknown = [a for a in args.agent if a not in METHODS]
    if foreign_json(args.json):
        print(f"error: {foreign_json(args.json)}", file=sys.stderr)
        return 2
    if unknown or not args.agent or args.steps < 1:
        print(f"error: give --agent from {', '.join(METHODS)} and --steps >= 1 (unknown: {unknown})",
              file=sys.stderr)
        return 2
    if args.one:
        result = time_one(args.one, args.qam.resolve(), args.sizes, BENCH_DOMAIN.get(args.one, "cube-double"),
                          args.steps)
        print("RESULT " + json.dumps(result))
        return 0
    results = []
    for name in args.agent:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--qam", str(args.qam), "--agent", name, "--one", name,
               "--sizes", args.sizes, "--steps", str(args.steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"error: {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        result = json.loads(lines[-1][len("RESULT "):])
        results.append(result)
        print(f"{name} ({args.sizes}, {result['domain']}): {result['updates_per_s']:.2f} updates/s "
              f"(median {result['step_ms_median']:.0f} ms, compile {result['compile_s']:.1f} s)", flush=True)
    if args.json:
        import jax

        commit = subprocess.run(["git", "-C", str(args.qam), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        out = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit, "jax": jax.__version__,
               "cpu_count": os.cpu_count(), "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0],
               "results": results}
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
