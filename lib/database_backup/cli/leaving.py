"""Leaving the engine's process without the interpreter's final garbage collections.

At exit CPython collects every generation several times while it tears the modules down.
With the AWS SDK's service model loaded that costs 0.14-0.18 s of one core on this
project's machines (measured: the time from the last `atexit` handler to the process's
end, a client built, 3 runs each), after the job's work is done and its state written,
on every backup and restore the worker waits for. By then the engine has closed what it
wrote (the state file, the artefact, the logs): `gc.freeze()` moves the objects still
alive out of those collections (0.01 s left), while `atexit` handlers (logging's flush,
temporary directories' finalizers) still run as before. The young generations are
collected first, so the cyclic garbage of the run's last steps is still finalized.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn


def leave(code: int) -> NoReturn:
    """Exit with `code`, the objects still alive left out of the final collections."""
    gc.collect(1)
    gc.freeze()
    sys.exit(code)
