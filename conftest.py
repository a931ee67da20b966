"""Repository-wide pytest set-up: the notebooks run in quick mode under nbval.

Notebooks read ``$KIT_QUICK`` when their ``quick`` parameter is left at ``None``; the kernels nbval
starts inherit this process's environment.
"""

import os

os.environ.setdefault("KIT_QUICK", "1")

