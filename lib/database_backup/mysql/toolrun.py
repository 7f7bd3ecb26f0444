"""Logs of the external tools (mariabackup, mbstream, ...) kept in files, not in memory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class ToolLog:
    """A log file that several tool runs append to (their stderr)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
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
