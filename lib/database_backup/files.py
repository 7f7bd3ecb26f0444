"""The one atomic JSON writer (and its reader) for state, spec, marker and journal files.

A reader sees either the old document or the new one, never half of one, and after a crash
the new one is on disk: the data is written to a temporary file in the same directory,
flushed and fsynced, given its mode, then renamed over the target. Output is indented,
key-sorted JSON with a trailing newline. The directory must exist (callers create it with
the mode they want).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast


def write_json_atomic(
    path: Path,
    data: object,
    *,
    mode: int = 0o600,
    default: Callable[[Any], object] | None = None,
) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically and durably.

    Args:
        path: the file to write; its directory must exist.
        data: a JSON-encodable value.
        mode: the file's permission bits (owner-only by default).
        default: turns values JSON cannot encode into ones it can (as ``json.dump``).

    Raises:
        OSError: the file cannot be written (nothing is left behind).
        TypeError, ValueError: ``data`` cannot be encoded (the old file is kept).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=default)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        value: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    return cast("dict[str, Any]", value)  # JSON object keys are always strings
