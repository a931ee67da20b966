"""The bottom layer: what every job needs and nothing that trains. Importing it imports no torch.

    annotations.py  Annotation lists and ``classes.txt``: the one reader and the one writer of the format
    atomic.py       Write files so that an interrupted run never leaves something that looks finished
    ckptcheck.py    Why a checkpoint cannot be read, and the way on: truncated, not a kit checkpoint
    commands.py     One entry point, one sub-command per job: the runner behind ``kit`` and ``python -m data_prep``
    diskfull.py     A full disk, said in one line: what was being written, where, how much it needed, what is free
    errors.py       One exception type for mistakes a user can fix
    lifetime.py     Nothing a workshop starts outlives it: kernels, and every process a notebook cell starts
    runlock.py      A folder that a command writes belongs to one process at a time
    seeding.py      Seeds and RNG state: every random generator the kit touches, in one place
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # annotations
    "list_file": "annotations",
    "classes_file": "annotations",
    "read_list": "annotations",
    "read_classes": "annotations",
    "read_words": "annotations",
    "write_list": "annotations",
    "write_classes": "annotations",
    # atomic
    "atomic_path": "atomic",
    "atomic_open": "atomic",
    "atomic_write_text": "atomic",
    "atomic_torch_save": "atomic",
    "tensor_bytes": "atomic",
    "atomic_savefig": "atomic",
    "atomic_dir": "atomic",
    # ckptcheck
    "unreadable": "ckptcheck",
    "way_on": "ckptcheck",
    "check_training_state": "ckptcheck",
    # commands
    "OneLineParser": "commands",
    "build_parser": "commands",
    "run_commands": "commands",
    # diskfull
    "SPACE_ERRNOS": "diskfull",
    "human": "diskfull",
    "free_bytes": "diskfull",
    "is_out_of_space": "diskfull",
    "DiskFull": "diskfull",
    "disk_full": "diskfull",
    "earlier_copy": "diskfull",
    "writing": "diskfull",
    "warn_if_short": "diskfull",
    # errors
    "UserError": "errors",
    # lifetime
    "PR_SET_PDEATHSIG": "lifetime",
    "die_with_parent": "lifetime",
    "settle_threads_at_exit": "lifetime",
    "popen": "lifetime",
    "GroupWatchdog": "lifetime",
    "watchdog": "lifetime",
    "tied_kernel_manager": "lifetime",
    # runlock
    "RunFolderBusy": "runlock",
    "lock_path": "runlock",
    "RECORD_WAIT_S": "runlock",
    "describe_holder": "runlock",
    "hold_run_folder": "runlock",
    # seeding
    "derive_seed": "seeding",
    "seed_cpu_generators": "seeding",
    "seed_all": "seeding",
    "rng_state": "seeding",
    "set_rng_state": "seeding",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
