"""Logs of the external tools (mariabackup, mbstream, ...) kept in files, not in memory."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO, Protocol


class ToolLog:
    """A log file that several tool runs append to (their stderr)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)

    @contextlib.contextmanager
    def open(self) -> Generator[BinaryIO, None, None]:
        """Open the file for appending (pass it as a subprocess's stderr)."""
        with self.path.open("ab") as handle:
            yield handle

    def note(self, text: str) -> None:
        """Append one line of our own."""
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")

    def text(self) -> str:
        """The whole log as text (undecodable bytes replaced)."""
        try:
            return self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def tail(text: str, lines: int = 5) -> str:
    """The last non-empty `lines` lines of a tool's log, joined with " | "."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


class Readable(Protocol):
    """Anything with `read(n) -> bytes`."""

    def read(self, n: int = -1, /) -> bytes:
        """Read up to `n` bytes (b"" at the end)."""
        ...


class Writable(Protocol):
    """Anything with `write(data)`."""

    def write(self, data: bytes, /) -> object:
        """Write `data`."""
        ...


class _End:
    """Queue marker: the source ended (error None) or failed (error set)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def pump(source: Readable, sink: Writable, *, chunk: int = 1 << 20, depth: int = 8) -> int:
    """Copy `source` to `sink` with a reader thread `depth` chunks ahead; return the bytes.

    Reading (download, decryption, decompression) and writing (a tool's stdin) overlap;
    memory stays bounded by `depth` chunks. An exception raised by `source.read` is
    re-raised here, after everything read before it was written.
    """
    items: queue.Queue[bytes | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                data = source.read(chunk)
                if not data:
                    break
                items.put(data)
            items.put(_End(None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(_End(exc))

    reader = threading.Thread(target=produce, name="pump-reader", daemon=True)
    reader.start()
    total = 0
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return total
            sink.write(item)
            total += len(item)
    finally:
        stop.set()
        while reader.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                items.get_nowait()
            reader.join(timeout=0.05)
