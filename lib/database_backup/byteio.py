"""Filling a caller's buffer from a byte source: with ``readinto`` where it works, or ``read``.

A source that fills the buffer saves a copy per read: the data goes straight from the
source into, say, an upload's part buffer. But having the attribute is not enough: a
subclass of ``io.RawIOBase`` that implements only ``read`` inherits a ``readinto`` that
raises ``NotImplementedError``. ``fill`` is the one loop the upload's part reader and the
digest stage share. ``Hasher`` is what a digest stage and a verification need of a hash.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Protocol, cast


class Hasher(Protocol):
    """A hash: ``hashlib.sha256()``, or ``storage.checksum.PartsHasher``."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        """Add the next bytes."""
        ...

    def hexdigest(self) -> str:
        """The hex digest of the bytes added so far."""
        ...


def readinto_of(source: object) -> Callable[[Any], int] | None:
    """``source.readinto`` when it really fills a buffer, else None (use ``read``)."""
    readinto = getattr(source, "readinto", None)
    if not callable(readinto):
        return None
    if isinstance(source, io.RawIOBase) and type(source).readinto is io.RawIOBase.readinto:
        return None
    # blocking sources only (pipes, files, stages): None ("no data yet") never comes back
    return cast("Callable[[Any], int]", readinto)


def fill(source: object, buffer: Any) -> int:
    """Fill ``buffer`` from ``source``, looping over short reads (pipes); return the count.

    With the source's working ``readinto`` the bytes land in ``buffer`` directly; else
    each ``read`` is copied in. Fewer bytes than ``len(buffer)`` only at the end.

    Raises:
        ValueError: a ``read`` returned more bytes than it was asked for.
    """
    readinto = readinto_of(source)
    read = cast("Callable[[int], bytes]", getattr(source, "read", None))
    with memoryview(buffer) as raw, raw.cast("B") as view:
        filled = 0
        while filled < len(view):
            if readinto is not None:
                got = readinto(view[filled:])
            else:
                chunk = read(len(view) - filled)
                got = len(chunk)
                if got > len(view) - filled:
                    raise ValueError("the source returned more bytes than asked for")
                view[filled : filled + got] = chunk
            if not got:
                break
            filled += got
    return filled
