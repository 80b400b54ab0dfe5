"""Training: ``train(config, run_dir)`` runs offline pre-training then online fine-tuning;
``train_seeds(config, seeds, run_dirs)`` runs several seeds of it in one process with vmapped updates."""

from qchunk.training.config import RUN_PRESETS, TrainConfig
from qchunk.training.loop import NonFiniteLoss, RunInterrupted, RunResult, train
from qchunk.training.multi_seed import parse_seeds, train_seeds

__all__ = ["RUN_PRESETS", "NonFiniteLoss", "RunInterrupted", "RunResult", "TrainConfig", "parse_seeds", "train",
           "train_seeds"]
