"""`python -m backup_manager.exporter --config FILE --port N` (see `server`)."""

from __future__ import annotations

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
