"""The named flags of ``kit train`` (``--epochs``, ``--lr`` ...), declared once: the recipe key each one sets.

A flag used to live in four places: the recipe, the schema, a flag -> key table and ``add_argument``. Now the
recipe holds the value, :data:`kit.config.schema.RECIPE_SCHEMA` what it may be, and :data:`FLAGS` everything
else about the flag: the key it sets, how it is spelled, its help. The flag -> key table
(:data:`FLAG_KEYS`, which :func:`kit.config.recipes.resolve` applies) and the argparse options of
``kit train`` (:mod:`kit.train.command`) are both made from it, and a number flag's type is the schema's
(an integer key gets ``int``, a number key ``float``), so that a flag cannot drift from the key it sets.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from kit.config.schema import RECIPE_SCHEMA, node_at
from kit.device.choices import AMP_CHOICES

__all__ = ["Flag", "FLAGS", "UNSCALE_LR", "FLAG_KEYS", "FLAG_SPELLING", "flag_spelling", "add_flags"]


@dataclass(frozen=True)
class Flag:
    """One named flag: ``--name-with-dashes`` sets the recipe's dotted ``key`` (None given: the recipe's value)."""

    name: str  # the argparse destination and the key of resolve()'s ``overrides``
    key: str  # the dotted recipe key it sets
    help: Optional[str] = None
    metavar: Optional[str] = None
    spelling: Optional[str] = None  # how the command line spells it, where not "--" + the name with dashes
    options: Mapping[str, Any] = field(default_factory=dict)  # other add_argument keywords (action, nargs ...)

    def type(self) -> Optional[type]:
        """What argparse converts the value to: the schema's type of :attr:`key` (None: the text as given, or a
        switch, whose action sets the value)."""
        if "action" in self.options:
            return None
        kinds = (node_at(RECIPE_SCHEMA, self.key.split(".")) or {}).get("type", ())
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        return int if "integer" in kinds else float if "number" in kinds else None


#: ``--unscale-lr``: not a value but a switch, which sets ``optimizer.lr_base_batch`` to None (no lr scaling).
UNSCALE_LR = Flag("unscale_lr", "optimizer.lr_base_batch", options={"action": "store_true"},
                  help="use --lr (or the recipe's lr) as is, without batch scaling")

#: Every named flag of ``kit train``, in the order ``kit train --help`` lists them. ``lr`` sets the base lr,
#: which is then scaled by the global batch.
FLAGS: tuple[Flag, ...] = (
    Flag("data", "data.path", metavar="DIR", help="dataset folder (train/, val/, optional meta/*.txt)"),
    Flag("out", "run.out", metavar="DIR", help="run folder (default runs/<recipe>)"),
    Flag("epochs", "epochs", metavar="N"),
    Flag("batch_size", "batch_size", metavar="N",
         help="per process; the global batch is this x the number of processes"),
    Flag("lr", "optimizer.lr", help="base learning rate, scaled by global batch / optimizer.lr_base_batch"),
    UNSCALE_LR,
    Flag("device", "run.device", metavar="DEV", help="auto, cpu, cuda[:N], sdaa[:N], mps (default auto)"),
    Flag("amp", "amp", metavar="MODE", help="mixed precision: none, auto, fp16 or bf16 (bare --amp = auto)",
         options={"nargs": "?", "const": "auto", "choices": AMP_CHOICES}),
    Flag("seed", "seed", metavar="N"),
    Flag("max_steps", "run.max_steps", metavar="N", help="stop after N optimizer steps (ModelZoo alignment: 100)"),
    Flag("max_epochs", "run.max_epochs", metavar="N",
         help="stop (and validate) after N epochs, keeping the schedule of --epochs"),
    Flag("save_every", "run.save_every", metavar="K", help="also write last.pth every K steps"),
    Flag("resume", "run.resume", metavar="CKPT", help="continue from <out>/last.pth (or CKPT)",
         options={"nargs": "?", "const": True}),
    Flag("overwrite", "run.overwrite", help="start afresh in an --out that holds a run",
         options={"action": "store_const", "const": True}),
    Flag("workers", "data.num_workers", metavar="N", help="data-loading worker processes"),
    Flag("compile", "compile", help="torch.compile the model", options={"action": "store_const", "const": True}),
    Flag("ema", "ema.enabled", spelling="--ema/--no-ema", help="model EMA on/off",
         options={"action": argparse.BooleanOptionalAction, "default": None}),
    Flag("skip_corrupt", "run.skip_corrupt", help="skip and count unreadable images",
         options={"action": "store_const", "const": True}),
    Flag("progress", "run.progress", spelling="--no-progress", help="no progress bar",
         options={"action": "store_const", "const": False}),
)

#: Named flag -> dotted recipe key (the value flags; ``--unscale-lr`` is the switch :data:`UNSCALE_LR`).
FLAG_KEYS: dict[str, str] = {f.name: f.key for f in FLAGS if f is not UNSCALE_LR}

#: How the command line spells a flag of :data:`FLAG_KEYS`, where it is not ``--`` + the name with dashes.
FLAG_SPELLING: dict[str, str] = {f.name: f.spelling for f in FLAGS if f.spelling}


def flag_spelling(flag: str) -> str:
    """``--batch-size`` for ``batch_size``: how a user typed the flag (named in a bad value's message)."""
    return FLAG_SPELLING.get(flag, "--" + flag.replace("_", "-"))


def add_flags(group) -> None:
    """Add every flag of :data:`FLAGS` to an argparse parser or group."""
    for flag in FLAGS:
        spelling = flag.spelling.split("/")[0] if flag.spelling else flag_spelling(flag.name)
        kwargs = {"dest": flag.name, **flag.options}
        for word, value in (("type", flag.type()), ("metavar", flag.metavar), ("help", flag.help)):
            if value is not None:
                kwargs[word] = value
        group.add_argument(spelling, **kwargs)
