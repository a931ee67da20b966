"""How far two dumps may differ and still count as aligned: one table, chosen by the precisions involved.

Two measures decide, both independent of a tensor's scale:

* ``max_rel`` = max |candidate - reference| / max |reference|: the largest error relative to the
  reference tensor's largest magnitude. (The element-wise ratio |c - r| / |r| is not used: it is
  dominated by elements that happen to be near zero.) For a gradient the denominator is at least the
  largest gradient element of the parameter's module: some gradients are zero in exact arithmetic
  and pure rounding noise in practice (an attention key's bias, CaiT's pre-softmax talking-heads bias:
  softmax ignores a constant shift), and measured against themselves that noise would be a 100 % error.
* ``cosine``: the cosine similarity of the two tensors as flat vectors (1 = same direction). It is not
  judged for a gradient whose largest element is below :data:`NOISE` times its module's largest
  gradient element: such a gradient is rounding noise (the two above, for instance), and its direction
  means nothing.

A side's precision is its autocast type when it ran under autocast (every entry then carries its
rounding, also those stored in fp32), else the tensor's dtype; a pair is judged by its looser side.
Gradients get looser bounds than module outputs: they carry the rounding of the forward *and* the
backward pass, and most of them are sums over the batch and the tokens in which terms cancel. Under
autocast that cancellation is severe for LayerNorm parameters (their gradients sum over every token of
the batch), so there the gradient bounds catch only gross errors: a flipped sign, a factor of several,
a gradient that is zero or NaN. Localise a gradient bug with fp32 on both sides.

=====================================  ================  ================  ================  ================
pair (looser side)                     forward max_rel   forward cosine    gradient max_rel  gradient cosine
=====================================  ================  ================  ================  ================
fp32 vs fp32 (fp64 counts as fp32)     <= 1e-3           >= 0.99999        <= 5e-3           >= 0.9999
fp16 autocast vs fp32 or fp16          <= 1e-2           >= 0.9999         <= 0.5            >= 0.9
bf16 autocast vs anything              <= 5e-2           >= 0.999          <= 1.5            >= 0.5
=====================================  ================  ================  ================  ================

SDAA's autocast picks its own half type, which a dump cannot see; it is judged as bf16, the looser.

Why these numbers: two correct fp32 implementations differ only in summation order and kernels, which
leaves errors far below 1e-3 of a tensor's scale, while a weight off by 1 % moves its module's output by
about 1e-2. bf16 keeps 8 significant bits, fp16 11: a rounding step of 2**-8 or 2**-11 in every matrix
product adds up over a network. The bf16 bounds sit above what healthy bf16 steps of the kit's models
measured, the fp16 ones are scaled from them by fp16's three extra bits (no fp16 autocast was at hand to
measure); docs/align.md gives the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Tolerance", "TOLERANCES", "NOISE", "precision", "tolerance_for"]


@dataclass(frozen=True)
class Tolerance:
    precision: str
    max_rel: float
    cosine: float

    def accepts(self, max_rel: float, cosine: Optional[float]) -> bool:
        """Within tolerance: ``max_rel`` small enough and ``cosine`` (None: not judged) high enough; NaN never is."""
        return max_rel <= self.max_rel and (cosine is None or cosine >= self.cosine)


#: precision -> (forward tolerance, gradient tolerance), as in the table above.
TOLERANCES = {
    "fp32": (Tolerance("fp32", 1e-3, 0.99999), Tolerance("fp32", 5e-3, 0.9999)),
    "fp16": (Tolerance("fp16", 1e-2, 0.9999), Tolerance("fp16", 0.5, 0.9)),
    "bf16": (Tolerance("bf16", 5e-2, 0.999), Tolerance("bf16", 1.5, 0.5)),
}

#: A gradient below this fraction of its module's largest gradient element is noise: its cosine is not judged.
NOISE = 1e-3

#: From tightest to loosest; a pair takes the looser of its two sides.
_ORDER = ("fp32", "fp16", "bf16")
_DTYPES = {"float64": "fp32", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def precision(amp_dtype: Optional[str], dtype: str) -> str:
    """One side's precision: its autocast type (bf16, fp16; ``half`` = unknown, judged as bf16), else the dtype's."""
    if amp_dtype:
        return amp_dtype if amp_dtype in TOLERANCES else "bf16"
    return _DTYPES.get(dtype, "bf16")


def tolerance_for(side_a: str, side_b: str, gradient: bool = False) -> Tolerance:
    """The tolerance for a pair of precisions (from :func:`precision`): the looser side's row."""
    return TOLERANCES[max(side_a, side_b, key=_ORDER.index)][1 if gradient else 0]
