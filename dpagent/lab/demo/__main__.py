"""``python -m dpagent.lab.demo``: see :mod:`dpagent.lab.demo`."""

import sys

from dpagent.lab.demo.cli import main

sys.exit(main())
