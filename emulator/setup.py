"""Packaging hook for one file pyproject.toml cannot place: the ``.pth`` that honours TORCH_SDAA_AUTOLOAD.

Python runs a ``.pth`` line that starts with ``import`` at every start-up; this one imports the emulator
only when ``TORCH_SDAA_AUTOLOAD=cuda_migrate`` is set, so that a CUDA script runs on the card unchanged, as
with Tecorigin's plugin. Without the variable it costs one environment look-up.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "vitkit_sdaa_autoload.pth"
LINE = ("import os, sys; exec(\"try:\\n import torch_sdaa\\nexcept Exception as e:\\n sys.stderr.write("
        "'torch_sdaa (emulated): TORCH_SDAA_AUTOLOAD=cuda_migrate not applied: %s\\\\n' % e)\") "
        "if os.environ.get('TORCH_SDAA_AUTOLOAD', '').strip() == 'cuda_migrate' else None\n")


class BuildWithPth(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / PTH
        target.write_text(LINE)


setup(cmdclass={"build_py": BuildWithPth})
