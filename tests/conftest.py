"""Shared fixtures: tiny real OGBench datasets generated once per test session with OGBench's oracles."""

import pytest

TINY_TASK = "puzzle-3x3-play-singletask-task2-v0"


@pytest.fixture(scope="session")
def tiny_ogbench_dir(tmp_path_factory):
    """A directory holding `puzzle-3x3-play-v0.npz` (+ `-val`): 3 episodes of 201 steps, seed 0."""
    from qchunk.datagen.ogbench import generate_ogbench

    out = tmp_path_factory.mktemp("ogbench")
    generate_ogbench("puzzle-3x3-play-v0", episodes=3, episode_steps=201, seed=0, out_dir=out, workers=1,
                     progress=False)
    return out
