"""Run logging: one writer interface over CSV files (always), TensorBoard and optionally W&B."""

from qchunk.logging.run_logger import RunLogger

__all__ = ["RunLogger"]
