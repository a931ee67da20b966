"""``kit align``: find the first module where a port's numbers leave the reference's.

A loss curve says *that* a port is off, never *where*. ``kit align dump`` runs one deterministic
training step (fixed batch, dropout off, one backward) on a device and records every module's output
and every parameter's gradient; ``kit align compare`` matches two such dumps entry by entry and names
the first forward module and the first gradient outside a precision-dependent tolerance, and the
first NaN/Inf. The same idea as Ascend's MindStudio Probe (``msprobe``), in a few hundred lines of
hooks; docs/align.md says why the kit does not build on it.

    batch.py      the fixed batch: first N val images, eval preprocessing, digests
    record.py     the hooks: module outputs, parameter gradients, dropout off
    stats.py      float64 statistics of a tensor, on its device
    values.py     numbers as the dump's JSON holds them (no torch)
    dump.py       the recorded training step: :func:`kit.align.dump.dump` (the module's name, so not re-exported)
    dumpio.py     the dump folder: index.json + tensors.safetensors, atomic, checked on reading (numpy)
    tolerance.py  the tolerance table
    compare.py    the comparison, entry by entry (numpy: ``kit align compare`` imports no torch)
    render.py     its text report
    plot.py       its figure
    command.py    ``kit align dump`` and ``kit align compare``
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # compare
    "FORWARD_KINDS": "compare",
    "Row": "compare",
    "Report": "compare",
    "compare_dumps": "compare",
    "compare_entry": "compare",
    "tensor_errors": "compare",
    "stats_errors": "compare",
    # dumpio
    "FULL_TENSORS_MAX": "dumpio",
    "Dump": "dumpio",
    "read_dump": "dumpio",
    "write_dump": "dumpio",
    # plot
    "plot_errors": "plot",
    # render
    "render_text": "render",
    # tolerance
    "Tolerance": "tolerance",
    "precision": "tolerance",
    "tolerance_for": "tolerance",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
