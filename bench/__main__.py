"""python -m bench [SCENARIO ...] [--smoke] [--postgres] [sizes]: see bench/README.md."""

from __future__ import annotations

import sys

from bench.run import main

sys.exit(main(sys.argv[1:]))
