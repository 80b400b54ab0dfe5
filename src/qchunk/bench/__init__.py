"""Benchmarks: ``qchunk.bench.update`` times the flow agents' updates and acting."""

from qchunk.bench.update import BenchArgs, main, run_bench

__all__ = ["BenchArgs", "main", "run_bench"]
