"""Training: the parts a recipe builds, the loop, checkpoints, DDP helpers, ``kit train``.

    checkpoint.py   Training checkpoints: what they hold, reading one back for ``--resume``, where a run starts
    command.py      ``kit train``: the command line over :func:`kit.train.loop.train`
    distributed.py  Several processes (torchrun): who this process is, the process group, means over processes
    loop.py         One training loop for HiViT and CaiT, to be read top to bottom
    parts.py        The parts a recipe builds, each from its library: model, optimizer, schedule, loss, EMA
    perturb.py      Numerics-only perturbations: how to make an ensemble of healthy runs on any device
    report.py       What a run says about itself before its first step: ``config.json``, train.log's preamble
    runlog.py       The two logs of a run: ``metrics.jsonl`` for programs, ``train.log`` in the ModelZoo's format
    state.py        What a run holds while it trains, in one visible object (``Run``), and its small records
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # checkpoint
    "CHECKPOINT_FORMAT": "checkpoint",
    "load_training_state": "checkpoint",
    "restore": "checkpoint",
    "weights_state": "checkpoint",
    "resume_path": "checkpoint",
    "starting_point": "checkpoint",
    "checkpoints_bytes": "checkpoint",
    "what_is_intact": "checkpoint",
    # distributed
    "dist_info": "distributed",
    "distributed": "distributed",
    "keep_alive": "distributed",
    "global_mean": "distributed",
    # loop
    "MAX_SKIPPED_IN_A_ROW": "loop",
    "NonFiniteLoss": "loop",
    "friendly_errors": "loop",
    "train_step": "loop",
    "evaluate": "loop",
    "train": "loop",
    "start_run": "loop",
    "run_epochs": "loop",
    "stop_if_not_finite": "loop",
    "validate_and_keep_best": "loop",
    # parts
    "build_model": "parts",
    "use_fused_optimizer": "parts",
    "FUSED_OPTIMIZERS": "parts",
    "build_optimizer": "parts",
    "warmup_start": "parts",
    "build_scheduler": "parts",
    "build_criterion": "parts",
    "Parts": "parts",
    "build_parts": "parts",
    # perturb
    "perturb_weights": "perturb",
    "add_gradient_noise": "perturb",
    "apply": "perturb",
    # report
    "environment": "report",
    "derived": "report",
    "report_start": "report",
    # runlog
    "METRICS": "runlog",
    "TRAIN_LOG": "runlog",
    "tcappdll_line": "runlog",
    "RunLog": "runlog",
    "read_metrics": "runlog",
    # state
    "TrainResult": "state",
    "Position": "state",
    "Plan": "state",
    "Progress": "state",
    "Run": "state",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
