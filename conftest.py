"""Repository-wide pytest set-up: the notebooks run in quick mode under nbval.

Notebooks read ``$KIT_QUICK`` when their ``quick`` parameter is left at ``None``; the kernels nbval
starts inherit this process's environment.
"""

import os

os.environ.setdefault("KIT_QUICK", "1")


def pytest_collection_modifyitems(config, items):
    """All notebook cells go to one xdist worker, in order: notebook 4 reads what notebook 3 trained."""
    import pytest

    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.xdist_group("notebooks"))
