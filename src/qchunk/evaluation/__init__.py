"""Evaluation: parallel environments, open-loop chunk execution, success rates."""

from qchunk.evaluation.evaluate import EvalResult, evaluation_seeds, run_episodes, run_episodes_serial
from qchunk.evaluation.pool import EnvPool

__all__ = ["EnvPool", "EvalResult", "evaluation_seeds", "run_episodes", "run_episodes_serial"]
