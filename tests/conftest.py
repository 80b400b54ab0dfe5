"""Shared fixtures: tiny real OGBench datasets generated once per test session with OGBench's oracles.

The suite compiles the same tiny networks in many processes (xdist workers, `qchunk` subprocesses, Ray
workers), so it shares one JAX persistent compilation cache: set here, before anything imports JAX, and
inherited by every child process. A fresh checkout starts it empty. The suite's networks are tiny, so
compiling dominates its time: XLA's optimisation passes are switched off for the tests
(``JAX_DISABLE_MOST_OPTIMIZATIONS``; measured: fast tier from a cold cache 450 s -> 291 s on 2 cores). Same
arithmetic on both sides of every equality test; the library's own default is unchanged.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

TINY_TASK = "puzzle-3x3-play-singletask-task2-v0"


@pytest.fixture(scope="session")
def tiny_ogbench_dir(tmp_path_factory):
    """A directory holding `puzzle-3x3-play-v0.npz` (+ `-val`): 3 episodes of 201 steps, seed 0."""
    from qchunk.datagen.ogbench import generate_ogbench

    out = tmp_path_factory.mktemp("ogbench")
    generate_ogbench("puzzle-3x3-play-v0", episodes=3, episode_steps=201, seed=0, out_dir=out, workers=1,
                     progress=False)
    return out
