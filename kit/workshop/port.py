"""Notebook 3's helpers: the shipped training scripts, their diff, and a script run as a learner runs it.

The lesson ports ``kit/assets/port/train_cuda.py`` (DeiT's loop cut to the workshop, written for CUDA) to SDAA by
hand (``train_sdaa.py``) and checks the port against a CPU run (``train_cpu.py``) with ``kit compare``. Each
script runs in a subprocess, as a learner runs it in a terminal: a fresh interpreter is the only way to see what
``TORCH_SDAA_AUTOLOAD``, ``torchrun`` or a lacking operator really do, and :func:`kit.core.lifetime.popen` makes
the run die with the kernel. What the scripts print on stderr that tells the learner nothing (torchrun's banner,
torch's notes) is set aside, so what the notebook shows is what matters.
"""

from __future__ import annotations

import difflib
import os
import re
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kit.core import lifetime
from kit.core.atomic import atomic_write_text

__all__ = ["ASSETS", "SCRIPTS", "script", "code_lines", "card", "autoload_installed", "side_by_side", "changed_lines",
           "ScriptRun", "run_script", "rank_losses", "quiet", "kit_compare", "half_precision"]

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "port"
#: The three versions of the one script: the CUDA original, its hand port to SDAA, the CPU fp32 reference.
SCRIPTS = {"cuda": "train_cuda.py", "sdaa": "train_sdaa.py", "cpu": "train_cpu.py"}

#: stderr lines that say nothing about the learner's run: torchrun's OMP banner, torch's CUDA_HOME and DDP
#: time-stats notes (DDP collects its timing statistics for CPU and CUDA only, so on sdaa it says so once), and
#: the source line Python's warning display repeats under a warning.
_NOISE = re.compile(r"^\*+$|OMP_NUM_THREADS|No CUDA runtime is found|"
                    r"Time stats are currently only collected for CPU and CUDA|"
                    r"^\s*(warnings\.warn\(|return |Variable\._execution_engine)")
#: Where in the extension's C++ a warning was raised: the learner needs the warning, not the file.
_TRIGGERED = re.compile(r"\s*\(Triggered internally at [^)]*\)\.?")


def script(kind: str) -> Path:
    """The shipped script ``kind`` (``cuda``, ``sdaa`` or ``cpu``)."""
    return ASSETS / SCRIPTS[kind]


def card(device: str = "auto") -> Optional[str]:
    """``"sdaa"`` when an SDAA card, Tecorigin's or the emulated one, is here and ``device`` allows it; else None.

    Unlike ``auto`` elsewhere in the kit this lesson takes the emulated card: porting to it is the point.
    """
    if device not in ("auto",) and not str(device).startswith("sdaa"):
        return None
    from kit.device import sdaa_module

    return "sdaa" if sdaa_module() is not None else None


def autoload_installed() -> bool:
    """Whether a fresh interpreter honours ``TORCH_SDAA_AUTOLOAD=cuda_migrate`` by itself.

    Tecorigin's torch_sdaa does; the emulated card does once ``make setup-emulator`` installed it (a ``.pth`` file
    in site-packages). An emulator found only through PYTHONPATH has no ``.pth``: :func:`run_script` then imports
    it before the script, which is what the ``.pth`` would have done.
    """
    from kit.device import sdaa_emulated, sdaa_module

    module = sdaa_module()
    if module is not None and not sdaa_emulated(module):
        return True
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return any((Path(d) / "vitkit_sdaa_autoload.pth").exists() for d in dirs)


#: ``difflib.HtmlDiff``'s marks as inline colours (added, changed, deleted).
_MARKS = {"diff_add": "#c8f0c8", "diff_chg": "#fbeaa0", "diff_sub": "#f8c8c8"}


def side_by_side(left: Path, right: Path, context: bool = True) -> str:
    """An HTML table of the two files side by side, changed lines marked (``difflib.HtmlDiff``).

    ``make_table`` gives the table without its style sheet, and JupyterLab right-aligns table cells: the marks
    become inline colours and the code cells left-aligned monospace, which every renderer keeps (JupyterLab,
    the HTML report, GitHub's notebook view), where a ``<style>`` block may be dropped.
    """
    table = difflib.HtmlDiff(wrapcolumn=72).make_table(
        Path(left).read_text().splitlines(), Path(right).read_text().splitlines(),
        Path(left).name, Path(right).name, context=context, numlines=1)
    table = re.sub(r'<span class="(diff_add|diff_chg|diff_sub)">',
                   lambda m: f'<span class="{m.group(1)}" style="background:{_MARKS[m.group(1)]}">', table)
    table = table.replace('<td nowrap="nowrap">',
                          '<td nowrap="nowrap" style="text-align:left;font-family:monospace;white-space:pre">')
    return f'<div style="font-size:11px">{table}</div>'


def code_lines(path: Path) -> list[str]:
    """The script's lines after its module docstring (which says what the file is, not what it runs)."""
    lines = Path(path).read_text().splitlines()
    if lines and lines[0].startswith('"""') and not (len(lines[0]) > 6 and lines[0].endswith('"""')):
        end = next(i for i, line in enumerate(lines[1:], 1) if line.rstrip().endswith('"""'))
        lines = lines[end + 1:]
    return lines


def changed_lines(left: Path, right: Path) -> tuple[list[str], list[str]]:
    """(the code lines only ``left`` has, those only ``right`` has), stripped: what a port removed and added."""
    a, b = code_lines(left), code_lines(right)
    diff = list(difflib.unified_diff(a, b, lineterm="", n=0))[2:]
    return ([d[1:].strip() for d in diff if d.startswith("-")], [d[1:].strip() for d in diff if d.startswith("+")])


def quiet(stderr: str) -> list[str]:
    """stderr without the lines that tell the learner nothing (see ``_NOISE``)."""
    lines = (_TRIGGERED.sub("", line) for line in stderr.splitlines())
    return [line for line in lines if line.strip() and not _NOISE.search(line)]


@dataclass
class ScriptRun:
    """A finished script run: its command line as a learner would type it, exit code, output and log."""

    shown: str
    returncode: int
    stdout: str
    stderr: list[str] = field(default_factory=list)
    log: Optional[Path] = None

    @property
    def error(self) -> str:
        """The last line of the traceback (``RuntimeError: ...``), or ``""``."""
        errors = [line for line in self.stderr if re.match(r"^\w*(Error|Exception)\b", line)]
        return errors[-1] if errors else ""

    def losses(self, rank: int = 0) -> list[float]:
        """The loss each step logged, as rank ``rank`` logged it (the mean over the ranks)."""
        return [mean for mean, _ in rank_losses(self.stdout).get(rank, [])]


_NUMBER = r"(-?[\d.]+(?:e[-+]?\d+)?|nan|inf)"
_DEIT_LINE = re.compile(rf"\sloss: {_NUMBER}\s+rank (\d+) own loss: {_NUMBER}")
_TCAPPDLL_LINE = re.compile(rf"rank : (\d+)\s+train\.loss : {_NUMBER}\s[^\n]*?own loss: {_NUMBER}")


def rank_losses(stdout: str) -> dict[int, list[tuple[float, float]]]:
    """``{rank: [(logged loss, the rank's own loss) per step]}`` from any of the three scripts' output."""
    found: dict[int, list[tuple[float, float]]] = {}
    for m in _DEIT_LINE.finditer(stdout):
        found.setdefault(int(m[2]), []).append((float(m[1]), float(m[3])))
    for m in _TCAPPDLL_LINE.finditer(stdout):
        found.setdefault(int(m[1]), []).append((float(m[2]), float(m[3])))
    return found


def run_script(path: Path, *args: str, log: Optional[Path] = None, env: Optional[dict] = None, nproc: int = 1,
               cuda_migrate: bool = False, timeout: float = 600) -> ScriptRun:
    """Run ``python path ARGS`` (``torchrun --nproc-per-node N`` when ``nproc`` > 1) and wait for it.

    ``cuda_migrate``: with ``TORCH_SDAA_AUTOLOAD=cuda_migrate``, as the ModelZoo's test scripts run a CUDA script.
    ``log``: where stdout is written (atomically), for ``kit compare``.
    """
    extra = dict(env or {})
    shown_env = " ".join(f"{k}={v}" for k, v in extra.items())
    if cuda_migrate:
        extra["TORCH_SDAA_AUTOLOAD"] = "cuda_migrate"
        shown_env = " ".join(filter(None, ["TORCH_SDAA_AUTOLOAD=cuda_migrate", shown_env]))
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)] if nproc > 1 else []
    if nproc > 1:
        extra.setdefault("OMP_NUM_THREADS", "1")  # two processes on the cores one would use
    program = [str(path), *map(str, args)]
    preamble = []
    if cuda_migrate and not autoload_installed():  # what the emulator's .pth does at start-up
        preamble.append("import torch_sdaa")
    if launch:  # torchrun starts each rank in a session of its own: tie the ranks to it, as popen ties it to us
        preamble.append("from kit.core.lifetime import die_with_parent, settle_threads_at_exit; die_with_parent(); "
                        "settle_threads_at_exit()")  # (each rank: torch can abort a short run at exit otherwise)
    if preamble:
        program = ["-c", "; ".join([*preamble, "import runpy, sys", "sys.argv = sys.argv[1:]",
                                    "runpy.run_path(sys.argv[0], run_name='__main__')"]), *program]
        if launch:
            launch.append("--no-python")
            program = [sys.executable, *program]
    shown = " ".join(filter(None, [shown_env, "torchrun --nproc-per-node " + str(nproc) if launch else "python",
                                   Path(path).name, *map(str, args)]))
    proc = lifetime.popen([sys.executable, *launch, *program], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, **extra})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    if log is not None:
        atomic_write_text(Path(log), out)
    return ScriptRun(shown, proc.returncode, out, quiet(err), Path(log) if log else None)


def kit_compare(reference: Path, candidate: Path, *args: str) -> tuple[int, str]:
    """``kit compare REFERENCE CANDIDATE ARGS``, as a learner types it: (exit code, what it printed)."""
    proc = lifetime.popen([sys.executable, "-m", "kit", "compare", str(reference), str(candidate), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


def half_precision(device_type: str) -> Optional[tuple[Callable[[], Any], Callable[..., Any]]]:
    """(autocast, GradScaler) in float16 for ``device_type``, or None where torch has no such scaler.

    On the card they are ``torch.sdaa.amp``'s, as the ports call them. On the CPU, torch's own: CPU autocast
    accepts float16 and ``torch.amp.GradScaler("cpu")`` exists from torch 2.3 on (torch 2.2, the first SDAA
    floor, has neither the class nor the CPU kernels it needs). Slow on a CPU, and never used for training there
    (notebook 0 says why), but the scaler's logic is the same, and that is what the toy shows.
    """
    import torch

    if device_type == "sdaa":
        return torch.sdaa.amp.autocast, torch.sdaa.amp.GradScaler
    scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if scaler is None:
        return None
    return (lambda: torch.autocast("cpu", dtype=torch.float16)), (lambda **kw: scaler("cpu", **kw))
