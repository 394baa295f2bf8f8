"""``python -m pytest_istiolab.probe``: the same as ``istiolab-probe``."""

import sys

from pytest_istiolab.probe.cli import main

sys.exit(main())
