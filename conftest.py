"""Repository-wide pytest set-up: the notebooks run in quick mode under nbval; the browser tests only on request.

Notebooks read ``$KIT_QUICK`` when their ``quick`` parameter is left at ``None``; the kernels nbval
starts inherit this process's environment.

``tests/browser/`` drives JupyterLab in Chromium: it needs a browser on the machine and minutes of time, so
``pytest tests`` (``make test``) leaves it out and ``make test-browser`` asks for it with ``--browser``.
"""

import os
from pathlib import Path

os.environ.setdefault("KIT_QUICK", "1")

BROWSER_TESTS = Path(__file__).resolve().parent / "tests" / "browser"


def pytest_addoption(parser):
    parser.addoption("--browser", action="store_true", help="also collect tests/browser (make test-browser)")


def pytest_ignore_collect(collection_path, config):
    if not config.getoption("--browser") and BROWSER_TESTS in (collection_path, *collection_path.parents):
        return True
    return None
