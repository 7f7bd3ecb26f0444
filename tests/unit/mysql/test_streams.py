"""The engine's stream plumbing: the tool-output reader and the read-ahead pump."""

from __future__ import annotations

import io
import subprocess

import pytest

from database_backup.mysql.physical.backup import BackupError, _ToolOutput, artefact_name
from database_backup.mysql.progress import ProgressEvent
from database_backup.mysql.toolrun import pump, tail


def _tool(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)


def test_tool_output_passes_data_and_reports_progress():
    events: list[ProgressEvent] = []
    output = _tool("head -c 3000000 /dev/zero")
    reader = _ToolOutput(output, events.append, 3_000_000)
    total = 0
    while chunk := reader.read(1 << 20):
        total += len(chunk)
    assert total == 3_000_000
    assert reader.count == 3_000_000
    assert not reader.tool_failed
    assert events
    assert events[0] == ProgressEvent("backup", events[0].bytes_done, 3_000_000)


def test_tool_output_raises_at_eof_when_the_tool_failed():
    reader = _ToolOutput(_tool("printf partial; exit 3"), None, 0)
    assert reader.read(100) == b"partial"
    with pytest.raises(BackupError, match="exited with code 3"):
        reader.read(100)
    assert reader.tool_failed


@pytest.mark.parametrize(
    ("level", "encrypted", "name"),
    [
        (None, False, "data.xbstream"),
        (3, False, "data.xbstream.zst"),
        (None, True, "data.xbstream.enc"),
        (19, True, "data.xbstream.zst.enc"),
    ],
)
def test_artefact_names(level: int | None, encrypted: bool, name: str):
    assert artefact_name(level, encrypted) == name


class _Failing:
    """Yields `good` bytes in small reads, then raises."""

    def __init__(self, good: int) -> None:
        self.left = good

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise ValueError("damaged at the end")
        size = min(self.left, 1000 if n < 0 else min(n, 1000))
        self.left -= size
        return b"x" * size


def test_pump_copies_everything():
    data = bytes(range(256)) * 10_000
    sink = io.BytesIO()
    assert pump(io.BytesIO(data), sink, chunk=4096, depth=2) == len(data)
    assert sink.getvalue() == data


def test_pump_writes_what_came_before_an_error_then_raises_it():
    sink = io.BytesIO()
    with pytest.raises(ValueError, match="damaged at the end"):
        pump(_Failing(5000), sink, chunk=1000, depth=2)
    assert sink.getvalue() == b"x" * 5000


def test_pump_stops_its_reader_when_the_sink_fails():
    class BrokenSink:
        def write(self, data: bytes) -> int:
            raise BrokenPipeError("the tool exited")

    source = io.BytesIO(b"y" * 10_000_000)
    with pytest.raises(BrokenPipeError):
        pump(source, BrokenSink(), chunk=1 << 16, depth=2)
    assert source.tell() < 10_000_000  # the reader did not run to the end


def test_tail_keeps_the_last_lines():
    assert tail("a\n\nb\nc\nd\n", 2) == "c | d"
    assert tail("") == "(no output)"
