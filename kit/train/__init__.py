"""Training: the parts a recipe builds, the loop, checkpoints, DDP helpers, ``kit train``.

    loop.py         ``kit train``: one training loop for HiViT and CaiT, to be read top to bottom
    perturb.py      Numerics-only perturbations: how to make an ensemble of healthy runs on any device
    runlog.py       The two logs of a run: ``metrics.jsonl`` for programs, ``train.log`` in the ModelZoo's format
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # loop
    "CHECKPOINT_FORMAT": "loop",
    "MAX_SKIPPED_IN_A_ROW": "loop",
    "TrainResult": "loop",
    "NonFiniteLoss": "loop",
    "Position": "loop",
    "build_model": "loop",
    "use_fused_optimizer": "loop",
    "FUSED_OPTIMIZERS": "loop",
    "build_optimizer": "loop",
    "warmup_start": "loop",
    "build_scheduler": "loop",
    "build_criterion": "loop",
    "Parts": "loop",
    "build_parts": "loop",
    "dist_info": "loop",
    "distributed": "loop",
    "load_training_state": "loop",
    "restore": "loop",
    "weights_state": "loop",
    "checkpoints_bytes": "loop",
    "friendly_errors": "loop",
    "train_step": "loop",
    "global_mean": "loop",
    "evaluate": "loop",
    "Plan": "loop",
    "Progress": "loop",
    "train": "loop",
    "validate_and_keep_best": "loop",
    "config_from_args": "loop",
    # perturb
    "perturb_weights": "perturb",
    "add_gradient_noise": "perturb",
    "apply": "perturb",
    # runlog
    "METRICS": "runlog",
    "TRAIN_LOG": "runlog",
    "tcappdll_line": "runlog",
    "RunLog": "runlog",
    "read_metrics": "runlog",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
