"""Environments: the explicit registry of supported tasks (no substring dispatch)."""

from qchunk.envs.registry import DOMAINS, OGBenchDomain, TaskSpec, parse_task

__all__ = ["DOMAINS", "OGBenchDomain", "TaskSpec", "parse_task"]
