"""A stand-in engine for the job runner's tests: runs until SIGTERM, which it records.

`python -m tests.unit.jobs.slow_engine <command> --spec SPEC --state-file STATE`, the same
contract as `database_backup.cli`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType


def main(argv: list[str]) -> int:
    """Write `running`, wait up to 60 s; on SIGTERM write `error` and exit 1."""
    state_file = Path(argv[argv.index("--state-file") + 1])

    def stop(_signum: int, _frame: FrameType | None) -> None:
        state = {"status": "error", "phase": "waiting", "message": "stopped by SIGTERM"}
        state_file.write_text(json.dumps(state))
        sys.exit(1)

    signal.signal(signal.SIGTERM, stop)
    state_file.write_text(json.dumps({"status": "running", "phase": "waiting"}))
    time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
