"""What a run holds while it trains, in one visible object: :class:`Run`, and the small records it keeps.

The loop (:mod:`kit.train.loop`) reads and changes the run only through this object: its recipe, device, parts,
run folder, where it stands (:class:`Progress`) and how long it is (:class:`Plan`). What the loop does *to* the
run folder (log a line, tell the callbacks, write last.pth) are the methods of :class:`Run`, so that no
function keeps state of its own and a reader finds every piece of the run's state in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from tqdm.auto import tqdm

from kit.core import seeding
from kit.core.atomic import atomic_torch_save
from kit.device import shim as device
from kit.train.checkpoint import CHECKPOINT_FORMAT, weights_state
from kit.train.parts import Parts
from kit.train.runlog import RunLog

__all__ = ["TrainResult", "Position", "Plan", "Progress", "Run"]


@dataclass
class TrainResult:
    """What :func:`kit.train.loop.train` returns (``on_step`` / ``on_eval`` records are in metrics.jsonl too)."""

    out_dir: str
    steps: int  # optimizer steps done, counting those before a resume
    epochs_completed: int
    val_acc1: Optional[float]  # last validation, in %
    val_acc5: Optional[float]
    val_loss: Optional[float]
    best_acc1: Optional[float]
    train_seconds: float  # wall-clock of this call's loop, validation included, set-up excluded
    images_per_s: float  # mean training throughput of this call (all processes together)
    last_loss: Optional[float]
    stopped: str  # "completed" (all epochs), "max_steps" or "max_epochs" (the limit that ended it)
    skipped_files: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Position:
    """Where a run is: ``batch`` batches of epoch ``epoch`` are done, ``step`` optimizer steps in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


@dataclass
class Plan:
    """How long the run is: the schedule's length, and where ``--max-steps`` / ``--max-epochs`` stop it."""

    steps_per_epoch: int
    total_steps: int  # epochs x steps_per_epoch: the schedule's length
    stop_at: int  # the step the run stops at (total_steps unless a limit comes first)
    stop_reason: str  # what stopping at stop_at is called: "completed", "max_steps" or "max_epochs"

    @classmethod
    def of(cls, epochs: int, steps_per_epoch: int, run: Mapping) -> "Plan":
        total = epochs * steps_per_epoch
        limits = [(total, "completed")]
        if run.get("max_steps"):
            limits.append((int(run["max_steps"]), "max_steps"))
        if run.get("max_epochs"):
            limits.append((int(run["max_epochs"]) * steps_per_epoch, "max_epochs"))
        stop_at, reason = min(limits, key=lambda limit: limit[0])
        return cls(steps_per_epoch, total, min(stop_at, total), reason if stop_at < total else "completed")


@dataclass
class Progress:
    """What changes as the run goes: the counters of the loop and what it has to report."""

    step: int
    best_acc1: Optional[float] = None
    skipped_files: set = field(default_factory=set)
    saved_step: Optional[int] = None  # the step last.pth holds (None: no checkpoint in this folder yet)
    last_loss: Optional[float] = None
    last_eval: dict = field(default_factory=dict)
    bad_in_a_row: int = 0  # non-finite losses in a row
    images_seen: int = 0  # by this call (all processes)


@dataclass
class Run:
    """One run, whole: what it was given (recipe, device, processes), what it built, and where it stands."""

    cfg: dict  # the resolved recipe
    dev: device.Device
    rank: int
    world: int
    out: Path  # the run folder
    loaders: Any  # kit.data.loaders.Loaders
    num_classes: int
    plan: Plan
    parts: Parts
    start: Position  # where this call starts: a fresh run's Position(), or the resumed checkpoint's
    progress: Progress
    log: RunLog
    callbacks: list = field(default_factory=list)
    bar: Any = None  # the progress bar, while the loop runs

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run folder and talks."""
        return self.rank == 0

    @property
    def batch_size(self) -> int:
        return int(self.cfg["batch_size"])

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    def say(self, text: str) -> None:
        """A line for train.log and the terminal (rank 0)."""
        if self.main:
            self.log.info(text)
            tqdm.write(text)

    def emit(self, kind: str, record: dict) -> None:
        """A ``"step"`` or ``"eval"`` record: to metrics.jsonl and train.log, then to each callback (rank 0)."""
        if self.main:
            (self.log.step if kind == "step" else self.log.eval)(record)
            for cb in self.callbacks:
                getattr(cb, f"on_{kind}", lambda record: None)(record)

    def log_step(self, record: dict) -> None:
        """A step's record to metrics.jsonl, train.log and the callbacks; the progress bar moves on."""
        self.progress.images_seen += self.global_batch
        self.emit("step", record)
        self.bar.set_postfix(
            loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", img_s=f"{record['images_per_s']:.0f}",
            refresh=False,
        )
        self.bar.update()

    def note_skipped(self, paths: list[str]) -> None:
        """Count and report the unreadable images a batch skipped (``--skip-corrupt``), each once."""
        for p in sorted(set(paths) - self.progress.skipped_files):
            self.progress.skipped_files.add(p)
            self.say(f"skipped unreadable image {p} ({len(self.progress.skipped_files)} so far)")

    def save_checkpoint(self, at: Position) -> None:
        """Write last.pth (rank 0): everything the run needs to go on exactly from ``at``."""
        if self.main:
            parts, progress = self.parts, self.progress
            state = {
                "format": CHECKPOINT_FORMAT,
                **weights_state(parts, self.cfg, self.num_classes),
                "optimizer": parts.optimizer.state_dict(),
                "scheduler": parts.scheduler.state_dict(),
                "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
                "rng": seeding.rng_state(self.dev),
                "position": asdict(at),
                "best_acc1": progress.best_acc1,
                "skipped_files": sorted(progress.skipped_files),
                "log_offsets": self.log.offsets(),
                "global_batch": self.global_batch,
                "steps_per_epoch": self.plan.steps_per_epoch,
            }
            atomic_torch_save(state, self.out / "last.pth")
        self.progress.saved_step = at.step

    def last_checkpoint(self) -> str:
        """The checkpoint a stopped run can go on from, in words."""
        saved = self.progress.saved_step
        return "none was saved" if saved is None else f"{self.out / 'last.pth'} (step {saved})"

    def result(self, train_seconds: float) -> TrainResult:
        """What came of the run, once its loop has ended."""
        progress, plan = self.progress, self.plan
        return TrainResult(
            out_dir=str(self.out),
            steps=progress.step,
            epochs_completed=progress.step // plan.steps_per_epoch,
            val_acc1=progress.last_eval.get("acc1"),
            val_acc5=progress.last_eval.get("acc5"),
            val_loss=progress.last_eval.get("loss"),
            best_acc1=progress.best_acc1,
            train_seconds=train_seconds,
            images_per_s=progress.images_seen / train_seconds if train_seconds > 0 else 0.0,
            last_loss=progress.last_loss,
            stopped="completed" if progress.step >= plan.total_steps else plan.stop_reason,
            skipped_files=sorted(progress.skipped_files),
            config=self.cfg,
        )
