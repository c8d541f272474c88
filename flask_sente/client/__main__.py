"""Run the command-line client: ``python -m flask_sente.client URL``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
