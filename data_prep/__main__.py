"""``python -m data_prep COMMAND``: the data-preparation commands."""

import sys

from data_prep.cli import main

sys.exit(main())
