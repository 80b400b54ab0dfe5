"""Record the fidelity fixtures: one update of the authors' agents, with everything needed to replay it.

Run it with a Python environment that has the authors' requirements (NOT qchunk's ``.venv``; see
``docs/fidelity.md``) and checkouts of their repositories::

    AUTHORS_PY tools/fidelity/record.py --qc PATH/TO/qc --qam PATH/TO/qam [--case NAME ...] [--check]

For each case (``tools/fidelity/cases.py``) a fresh process imports the authors' agent from the named
checkout, creates it at small sizes, builds a batch with the authors' own chunk sampler from a small
dataset whose windows cross an episode end and a terminal, and records, under ``jax.disable_jit()``:

* ``params/...``: the parameters before the recorded update (every module, targets included), after two
  warm-up updates so that every target network differs from its online one; ``opt/mu/...``, ``opt/nu/...``,
  ``opt/count``: Adam's state then;
* ``batch/...``: the batch; ``dataset/...`` and ``sample/idxs``: the data it was sampled from;
* ``draws/update/NNN`` (sampler ``draws_kind/update/NNN``): every random draw of one update, in call order;
* ``out/loss``, ``info/...``: the total loss and every logged metric of ``total_loss``;
* ``grads/...``: the gradient of the total loss with respect to every parameter;
* ``update_info/...``, ``new_params/...``: what ``agent.update`` returns (metrics, parameters after Adam and
  the Polyak step);
* ``act/obs``, ``draws/act/NNN``, ``act/actions``: ``sample_actions`` on the batch's states and its draws;
* ``meta``: JSON with the case, the resolved config, the authors' commit and the package versions.

Numbers only: the fixtures hold no code. ``--check`` records into a temporary directory and compares with
the existing fixtures (recording twice must give identical numbers).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parents[1] / "tests" / "fixtures" / "fidelity"
OBS_DIM, ACTION_DIM, BATCH = 5, 2, 8
SAMPLE_IDXS = np.array([10, 11, 24, 25, 3, 38, 57, 0])
"""Window starts: 10 and 11 cross the episode end at 11 (a time-out), 24 and 25 the terminal at 25."""
WARMUP_IDXS = (np.array([5, 30, 45, 12, 50, 20, 33, 8]), np.array([1, 2, 23, 4, 26, 27, 41, 55]))
"""Two updates before the recorded one, so that target networks differ from online ones and Adam has state."""


def small_dataset() -> dict[str, np.ndarray]:
    """60 transitions in 4 episodes (ends at 11, 25, 40, 59; index 25 terminates, the others time out),
    float32, with states, actions in (-1, 1) and rewards drawn from a fixed seed."""
    rs = np.random.RandomState(1234)
    n = 60
    ends = np.zeros(n, np.float32)
    ends[[11, 25, 40, 59]] = 1.0
    masks = np.ones(n, np.float32)
    masks[25] = 0.0
    obs = rs.normal(size=(n + 1, OBS_DIM)).astype(np.float32)
    next_obs = obs[1:].copy()
    return {
        "observations": obs[:-1],
        "next_observations": next_obs,
        "actions": np.tanh(rs.normal(size=(n, ACTION_DIM))).astype(np.float32),
        "rewards": rs.normal(size=n).astype(np.float32),
        "terminals": ends,
        "masks": masks,
    }


def flat(tree, prefix: str = "") -> dict[str, np.ndarray]:
    """``{'a/b/c': array}`` for a nested mapping of arrays."""
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if hasattr(value, "items"):
            out.update(flat(value, path + "/"))
        else:
            out[path] = np.asarray(value)
    return out


def adam_state(opt_state):
    """The one ``ScaleByAdamState`` (``count``, ``mu``, ``nu``) inside an optax state."""
    import jax
    import optax

    found = [x for x in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
             if isinstance(x, optax.ScaleByAdamState)]
    if len(found) != 1:
        raise RuntimeError(f"expected one Adam state, found {len(found)}")
    return found[0]


def record_one(name: str, repo: Path, out: Path) -> None:
    """Record case ``name`` from the checkout ``repo`` into ``out`` (runs in its own process)."""
    import jax
    import jax.numpy as jnp
    from capture import DrawCapture
    from cases import case_named

    case = case_named(name)
    sys.path.insert(0, str(repo))
    module = importlib.import_module(case.module)
    datasets = importlib.import_module("utils.datasets")
    config = module.get_config()
    config.update(case.config)
    config["horizon_length"] = case.horizon

    raw = small_dataset()
    dataset = datasets.Dataset.create(**{k: v.copy() for k, v in raw.items()})

    def sample(idxs):  # the authors' chunk sampler at chosen window starts
        saved_randint = np.random.randint
        np.random.randint = lambda *a, **k: idxs.copy()
        try:
            out = dataset.sample_sequence(BATCH, sequence_length=case.horizon, discount=config["discount"])
        finally:
            np.random.randint = saved_randint
        return {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}

    agent_cls = getattr(module, case.cls)
    agent = agent_cls.create(case.seed, raw["observations"][0], raw["actions"][0], config)
    with jax.disable_jit():  # eagerly, like the recorded update: one set of compiled operations serves both
        for idxs in WARMUP_IDXS[: case.warmup]:
            agent, _ = agent.update(sample(idxs), **case.update_kwargs)
    batch = sample(SAMPLE_IDXS)
    record: dict[str, np.ndarray] = {}
    record.update({f"dataset/{k}": v for k, v in raw.items()})
    record["sample/idxs"] = SAMPLE_IDXS
    record.update({f"batch/{k}": np.asarray(v) for k, v in batch.items()})
    params = agent.network.params
    record.update({f"params/{k}": v for k, v in flat(params).items()})
    adam = adam_state(agent.network.opt_state)
    record.update({f"opt/mu/{k}": v for k, v in flat(adam.mu).items()})
    record.update({f"opt/nu/{k}": v for k, v in flat(adam.nu).items()})
    record["opt/count"] = np.asarray(adam.count)

    def draws(tag: str, calls) -> None:
        for i, (kind, value) in enumerate(calls):
            record[f"draws/{tag}/{i:03d}"] = value
            record[f"draws_kind/{tag}/{i:03d}"] = np.array(kind)

    loss_kwargs = case.update_kwargs if case.loss_kwargs is None else case.loss_kwargs
    with jax.disable_jit():
        _, rng = jax.random.split(agent.rng)

        def loss_fn(grad_params):
            return agent.total_loss(batch, grad_params, rng=rng, **loss_kwargs)

        with DrawCapture() as loss_draws:
            (loss, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        with DrawCapture() as update_draws:
            new_agent, update_info = agent.update(batch, **case.update_kwargs)
        with DrawCapture() as act_draws:
            if case.act_per_state:  # an agent whose sample_actions takes one state
                keys = jax.random.split(jax.random.PRNGKey(7), BATCH)
                actions = jnp.stack([agent.sample_actions(obs, rng=key)
                                     for obs, key in zip(batch["observations"], keys, strict=True)])
            else:
                actions = agent.sample_actions(batch["observations"], rng=jax.random.PRNGKey(7))

    if len(loss_draws.calls) != len(update_draws.calls) or any(
            not np.array_equal(a[1], b[1]) for a, b in zip(loss_draws.calls, update_draws.calls, strict=True)):
        raise RuntimeError(f"{name}: total_loss and update drew different numbers; adapt the recorder")
    draws("update", loss_draws.calls)
    draws("act", act_draws.calls)
    record["out/loss"] = np.asarray(loss)
    record.update({f"info/{k}": np.asarray(v) for k, v in info.items()})
    record.update({f"grads/{k}": v for k, v in flat(grads).items()})
    record.update({f"update_info/{k}": np.asarray(v) for k, v in update_info.items()})
    record.update({f"new_params/{k}": v for k, v in flat(new_agent.network.params).items()})
    record["act/obs"] = np.asarray(batch["observations"])
    record["act/actions"] = np.asarray(actions)

    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "distrax", "tensorflow_probability", "numpy"):
        try:
            versions[pkg] = importlib.import_module(pkg).__version__
        except ImportError:
            pass
    resolved = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items()}
    meta = {"case": case.name, "repo": case.repo, "module": case.module, "class": case.cls, "commit": commit.strip(),
            "config": resolved, "horizon": case.horizon, "update_kwargs": case.update_kwargs,
            "obs_dim": OBS_DIM, "action_dim": ACTION_DIM, "batch": BATCH, "seed": case.seed, "warmup": case.warmup,
            "versions": versions}
    if case.loss_kwargs is not None:
        meta["loss_kwargs"] = case.loss_kwargs
    record["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    bad = [k for k, v in record.items() if v.dtype == object]
    if bad:
        raise RuntimeError(f"{name}: non-numeric entries {bad}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **record)
    tmp.replace(out)


def same_numbers(a: Path, b: Path) -> list[str]:
    """Keys whose arrays differ between two fixture files (``meta`` compared as text)."""
    with np.load(a) as fa, np.load(b) as fb:
        keys = sorted(set(fa.files) | set(fb.files))
        return [k for k in keys if k not in fa.files or k not in fb.files or not np.array_equal(fa[k], fb[k])]


def main(argv: list[str] | None = None) -> int:
    from cases import CASES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qc", type=Path, help="checkout of github:ColinQiyangLi/qc")
    parser.add_argument("--qam", type=Path, help="checkout of github:ColinQiyangLi/qam")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture directory (default: %(default)s)")
    parser.add_argument("--case", action="append", default=[], help="record only these cases (repeatable)")
    parser.add_argument("--check", action="store_true", help="record into a temporary directory and compare")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        record_one(args.one, args.repo, args.file)
        return 0
    names = args.case or [c.name for c in CASES]
    by_name = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    repos = {"qc": args.qc, "qam": args.qam}
    missing = sorted({by_name[n].repo for n in names if repos[by_name[n].repo] is None})
    if missing:
        print(f"error: these cases need --{' --'.join(missing)} (a checkout of the authors' repository)",
              file=sys.stderr)
        return 2
    bad = [f"--{k} {p}" for k, p in repos.items() if p is not None and not (p / "agents").is_dir()]
    if bad:
        print(f"error: not a checkout of the authors' repository (no agents/): {', '.join(bad)}", file=sys.stderr)
        return 2
    out_dir = Path(tempfile.mkdtemp(prefix="fidelity-")) if args.check else args.out
    failed = []
    for i, name in enumerate(names, 1):
        target = out_dir / f"{name}.npz"
        print(f"[{i}/{len(names)}] {name}", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--repo",
               str(repos[by_name[name].repo].resolve()), "--file", str(target)]
        # XLA's optimisation passes off: the small networks compile several times faster (the warm-up updates are
        # jitted; the recorded update runs eagerly); recording stays deterministic.
        # A compilation cache shared by the cases' processes saves recompiling the same operations.
        env = {**os.environ, "JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "JAX_PLATFORMS": "cpu",
               "JAX_COMPILATION_CACHE_DIR": str(Path(tempfile.gettempdir()) / "qchunk-fidelity-jax-cache"),
               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
        if subprocess.run(cmd, cwd=HERE, env=env).returncode != 0:
            failed.append(name)
            continue
        if args.check:
            diff = same_numbers(target, args.out / f"{name}.npz")
            print(f"    {'identical' if not diff else 'DIFFERENT: ' + ', '.join(diff[:8])}")
            if diff:
                failed.append(name)
    if failed:
        print(f"error: {len(failed)} case(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
