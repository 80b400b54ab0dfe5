"""Experiments: grids of training runs (sweeps) on Ray and the paper's named studies (recipes).

``qchunk sweep`` is the command line; from Python::

    from qchunk.experiments import SweepArgs, plan_sweep, execute
    plan = plan_sweep(SweepArgs(agents=(("qc", "qc-fql"),), envs=(("cube-double",),), seeds=(("0-3",),)))
    execute(plan, cpus_per_run=1, gpus_per_run=0.25)
"""

from qchunk.experiments.grid import RunSpec, Variant, expand_grid, parse_envs, parse_settings
from qchunk.experiments.recipes import RECIPES, Recipe, get_recipe
from qchunk.experiments.sweep import SweepArgs, SweepPlan, execute, plan_sweep, run_state
from qchunk.grammar import parse_seeds

__all__ = [
    "RECIPES",
    "Recipe",
    "RunSpec",
    "SweepArgs",
    "SweepPlan",
    "Variant",
    "execute",
    "expand_grid",
    "get_recipe",
    "parse_envs",
    "parse_seeds",
    "parse_settings",
    "plan_sweep",
    "run_state",
]
