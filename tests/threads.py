"""Which of the library's worker threads are still alive after the code under test returned."""

from __future__ import annotations

import threading
import time


def lingering_threads(prefix: str, wait: float = 5.0) -> list[str]:
    """Names of live threads starting with `prefix`, after up to `wait` s for them to end."""
    deadline = time.monotonic() + wait
    while True:
        names = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
        if not names or time.monotonic() > deadline:
            return names
        time.sleep(0.05)
