"""Loss curves from text logs: formats, the ModelZoo and strict rules, the noise verdict, ``kit compare``.

It reads logs only: nothing here imports torch, timm or the kit's models (an import-linter contract).

    command.py      ``kit compare``: the command line (reads text logs only)
    compare.py      The ModelZoo and strict rules: is a port's training loss close enough to a reference run?
    configdiff.py   The configuration differences that matter between two runs or two alignment dumps
    logformats.py   Training-loss log readers: which log formats exist, and why each is read the way it is
    noise.py        The noise-aware verdict
    plot.py         The picture of a comparison: both curves over the relative error
    report.py       The text report of a comparison
    series.py       Arithmetic on loss series that every rule shares
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # compare
    "MRE_THRESHOLD": "compare",
    "MAE_THRESHOLD": "compare",
    "DISPLAY_WINDOW": "compare",
    "Figures": "compare",
    "Comparison": "compare",
    "compare_curves": "compare",
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
    # noise
    "WINDOW": "noise",
    "K": "noise",
    "MAX_OUTSIDE": "noise",
    "ALPHA": "noise",
    "FLOOR": "noise",
    "NoiseVerdict": "noise",
    "judge": "noise",
    # plot
    "plot_comparison": "plot",
    # report
    "format_report": "report",
    "verdict_word": "report",
    # series
    "first_sustained": "series",
    "moving_average": "series",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
