"""Training: ``train(config, run_dir)`` runs offline pre-training then online fine-tuning;
``train_seeds(config, seeds, run_dirs)`` runs several seeds of it in one process with vmapped updates
(the same loop: a single run is one seed). ``RunDir`` owns the run directory's layout."""

from qchunk.grammar import parse_seeds
from qchunk.training.config import RUN_PRESETS, TrainConfig
from qchunk.training.loop import RunInterrupted, train, train_runs, train_seeds
from qchunk.training.result import RunResult
from qchunk.training.run_dir import RESUME_FREE_FIELDS, RunDir, RunRecord, config_differences, find_runs
from qchunk.training.seed_run import NonFiniteLoss

__all__ = ["RESUME_FREE_FIELDS", "RUN_PRESETS", "NonFiniteLoss", "RunDir", "RunInterrupted", "RunRecord",
           "RunResult", "TrainConfig", "config_differences", "find_runs", "parse_seeds", "train", "train_runs",
           "train_seeds"]
