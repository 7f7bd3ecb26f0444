"""Whether a byte source can fill a caller's buffer (``readinto``), or only return bytes.

A source that fills the buffer saves a copy per read: the data goes straight from the
source into, say, an upload's part buffer. But having the attribute is not enough: a
subclass of ``io.RawIOBase`` that implements only ``read`` inherits a ``readinto`` that
raises ``NotImplementedError``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, cast


def readinto_of(source: object) -> Callable[[Any], int] | None:
    """``source.readinto`` when it really fills a buffer, else None (use ``read``)."""
    readinto = getattr(source, "readinto", None)
    if not callable(readinto):
        return None
    if isinstance(source, io.RawIOBase) and type(source).readinto is io.RawIOBase.readinto:
        return None
    # blocking sources only (pipes, files, stages): None ("no data yet") never comes back
    return cast("Callable[[Any], int]", readinto)
