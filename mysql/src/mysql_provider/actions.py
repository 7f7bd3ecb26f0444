"""Action results that Juju accepts: each value stays well under its 128 KiB limit (no ops)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: the most one action result value may hold here (Juju refuses more than 128 KiB)
MAX_VALUE_BYTES = 100 * 1024
MAX_TEXT = 4096  # a single text value (a message) in an action result


def bounded_rows(
    rows: Sequence[Mapping[str, Any]], *, total: int, max_bytes: int = MAX_VALUE_BYTES
) -> tuple[str, str]:
    """The rows as JSON (oldest dropped first until it fits) and a note when some are left out.

    Args:
        rows: the rows to show, oldest first.
        total: how many rows exist in all (more than `rows` when a limit applied).
        max_bytes: the size the JSON text must stay under.
    """
    kept = list(rows)
    text = json.dumps(kept, indent=1)
    trimmed = False
    while kept and len(text.encode()) > max_bytes:
        kept.pop(0)
        trimmed = True
        text = json.dumps(kept, indent=1)
    if trimmed:
        limit = f"{max_bytes // 1024} KiB"
        return (
            text,
            f"showing the newest {len(kept)} of {total} jobs (the output is limited to {limit})",
        )
    if len(kept) < total:
        return text, f"showing the newest {len(kept)} of {total} jobs; run with limit=N for more"
    return text, ""


def clip(value: Any) -> Any:
    """A text value cut to `MAX_TEXT` characters; anything else as it is."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[: MAX_TEXT - 3] + "..."
    return value
