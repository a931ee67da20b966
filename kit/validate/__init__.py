"""Loss curves from text logs: formats, the ModelZoo and strict rules, the noise verdict, ``kit compare``.

It reads logs only: nothing here imports torch, timm or the kit's models (an import-linter contract).

    configdiff.py   The configuration differences that matter between two runs or two alignment dumps
    logformats.py   Training-loss log readers: which log formats exist, and why each is read the way it is
    losscurve.py    Loss-curve validation: is a port's training loss close enough to a reference run?
    noise.py        The noise-aware verdict
    series.py       Arithmetic on loss series that every rule shares
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # configdiff
    "IGNORED": "configdiff",
    "DERIVED": "configdiff",
    "VERSIONS": "configdiff",
    "flatten": "configdiff",
    "config_differences": "configdiff",
    "run_folder_config": "configdiff",
    # logformats
    "Curve": "logformats",
    "Points": "logformats",
    "head": "logformats",
    "Reader": "logformats",
    "READERS": "logformats",
    "detect_format": "logformats",
    "read_curve": "logformats",
    # losscurve
    "MRE_THRESHOLD": "losscurve",
    "MAE_THRESHOLD": "losscurve",
    "DISPLAY_WINDOW": "losscurve",
    "Figures": "losscurve",
    "Comparison": "losscurve",
    "compare_curves": "losscurve",
    "format_report": "losscurve",
    "plot_comparison": "losscurve",
    # noise
    "WINDOW": "noise",
    "K": "noise",
    "MAX_OUTSIDE": "noise",
    "ALPHA": "noise",
    "FLOOR": "noise",
    "NoiseVerdict": "noise",
    "judge": "noise",
    # series
    "first_sustained": "series",
    "moving_average": "series",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
