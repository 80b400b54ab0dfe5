"""Training: ``train(config, run_dir)`` runs offline pre-training then online fine-tuning."""

from qchunk.training.config import RUN_PRESETS, TrainConfig
from qchunk.training.loop import NonFiniteLoss, RunInterrupted, RunResult, train

__all__ = ["RUN_PRESETS", "NonFiniteLoss", "RunInterrupted", "RunResult", "TrainConfig", "train"]
