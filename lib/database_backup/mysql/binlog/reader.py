"""Read what the binlog index needs from a binary log file's event headers (pure Python).

Only the 19-byte v4 event headers are walked (other bodies are skipped with a seek),
plus the bodies of the few events that carry GTIDs, so summarising a 1 GiB binlog reads
its headers, not its rows. Understood: MariaDB GTID (162) and GTID list (163) events,
MySQL GTID events (33), the format description (15) and rotate (4) events. Encrypted
binlogs (`encrypt_binlog=ON`) cannot be summarised and are refused.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from ..errors import EngineError

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server id, event size, next pos, flags
ROTATE_EVENT = 4
FORMAT_DESCRIPTION_EVENT = 15
MYSQL_GTID_EVENT = 33
MARIADB_START_ENCRYPTION_EVENT = 164
MARIADB_GTID_EVENT = 162
MARIADB_GTID_LIST_EVENT = 163
_READ_BODY = frozenset({MARIADB_GTID_EVENT, MARIADB_GTID_LIST_EVENT, MYSQL_GTID_EVENT})
_SKIP_TIME = frozenset({FORMAT_DESCRIPTION_EVENT, ROTATE_EVENT, MARIADB_GTID_LIST_EVENT, 161})


class BinlogFormatError(EngineError):
    """The file is not a binary log this reader understands (or it is damaged)."""


@dataclass
class BinlogSummary:
    """What one binary log file holds.

    Attributes:
        created: timestamp of the format description event (when the file was opened).
        first_event: timestamp of the first transaction/statement event, or None.
        last_event: timestamp of the last event of any kind (the closing rotate/stop).
        end_position: offset just after the last complete event.
        server_ids: server ids seen on events.
        gtid_list: the GTID state written at the start of the file (MariaDB), i.e.
            the last GTID per domain and server before this file, "d-s-n" strings.
        first_gtids: first GTID per domain found in the file.
        last_gtids: last GTID per domain found in the file.
        events: number of events read.
        closed: whether the file ends with a rotate or stop event.
    """

    created: int = 0
    first_event: int | None = None
    last_event: int = 0
    end_position: int = 4
    server_ids: set[int] = field(default_factory=set[int])
    gtid_list: list[str] = field(default_factory=list[str])
    first_gtids: dict[int, str] = field(default_factory=dict[int, str])
    last_gtids: dict[int, str] = field(default_factory=dict[int, str])
    events: int = 0
    closed: bool = False


class _RawReadable(Protocol):
    """A binary file, raw ones included (a non-blocking raw read returns None)."""

    def read(self, size: int = -1, /) -> bytes | None:
        """Read up to `size` bytes."""
        ...


def _read_exact(handle: _RawReadable, size: int) -> bytes:
    data = handle.read(size)
    return data if data is not None else b""


def _gtid_list(body: bytes) -> list[str]:
    if len(body) < 4:
        raise BinlogFormatError("short GTID list event")
    (count,) = struct.unpack_from("<I", body, 0)
    count &= 0x0FFFFFFF
    entries: list[str] = []
    for index in range(count):
        offset = 4 + 16 * index
        if offset + 16 > len(body):
            raise BinlogFormatError("truncated GTID list event")
        domain, server, seq = struct.unpack_from("<IIQ", body, offset)
        entries.append(f"{domain}-{server}-{seq}")
    return entries


def summarize(handle: BinaryIO, *, limit: int | None = None) -> BinlogSummary:
    """Walk the events of a binlog file (positioned at its start) and summarise them.

    Args:
        handle: the file, opened in binary mode at offset 0.
        limit: stop at this offset (the size the server reported), None for the end.

    Raises:
        BinlogFormatError: not a binlog, encrypted, or an event header is damaged.
    """
    if _read_exact(handle, 4) != MAGIC:
        raise BinlogFormatError("not a binary log (bad magic number)")
    end = handle.seek(0, os.SEEK_END)
    handle.seek(4)
    if limit is not None:
        end = min(end, limit)
    summary = BinlogSummary()
    position = 4
    while position + HEADER.size <= end:
        timestamp, kind, server_id, size, _next, _flags = HEADER.unpack(
            _read_exact(handle, HEADER.size)
        )
        if size < HEADER.size:
            raise BinlogFormatError(f"damaged event header at offset {position}")
        if position + size > end:
            break  # a partial event at the end (still being written): not counted
        if kind in _READ_BODY:
            body = _read_exact(handle, size - HEADER.size)
        else:  # row events can be large: skip their bodies
            body = b""
            handle.seek(size - HEADER.size, os.SEEK_CUR)
        position += size
        _account(summary, kind, timestamp, server_id, body)
        summary.end_position = position
    return summary


def _account(
    summary: BinlogSummary, kind: int, timestamp: int, server_id: int, body: bytes
) -> None:
    summary.events += 1
    if kind == MARIADB_START_ENCRYPTION_EVENT:
        raise BinlogFormatError("the binary log is encrypted (encrypt_binlog): not supported")
    if kind == FORMAT_DESCRIPTION_EVENT:
        summary.created = summary.created or timestamp
    if timestamp:
        summary.last_event = max(summary.last_event, timestamp)
    if kind not in _SKIP_TIME and timestamp and summary.first_event is None:
        summary.first_event = timestamp
    if server_id:
        summary.server_ids.add(server_id)
    if kind in (ROTATE_EVENT, 3):
        summary.closed = True
    if kind == MARIADB_GTID_LIST_EVENT and not summary.gtid_list:
        summary.gtid_list = _gtid_list(body)
    elif kind == MARIADB_GTID_EVENT and len(body) >= 12:
        seq, domain = struct.unpack_from("<QI", body, 0)
        gtid = f"{domain}-{server_id}-{seq}"
        summary.first_gtids.setdefault(domain, gtid)
        summary.last_gtids[domain] = gtid
    elif kind == MYSQL_GTID_EVENT and len(body) >= 25:
        sid = body[1:17].hex()
        uuid = f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}"
        (gno,) = struct.unpack_from("<q", body, 17)
        summary.first_gtids.setdefault(0, f"{uuid}:{gno}")
        summary.last_gtids[0] = f"{uuid}:{gno}"


def summarize_file(path: str, *, limit: int | None = None) -> BinlogSummary:
    """`summarize` a binlog file by path."""
    with open(path, "rb") as handle:
        return summarize(handle, limit=limit)


def parse_gtid(text: str) -> tuple[int, int, int]:
    """Parse a MariaDB GTID "domain-server-seq".

    Raises:
        ValueError: not a MariaDB GTID.
    """
    parts = text.strip().split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError(f"not a MariaDB GTID: {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def gtid_positions(text: str | None) -> dict[int, int]:
    """Highest sequence number per domain of a MariaDB GTID list ("0-1-5,1-2-9")."""
    positions: dict[int, int] = {}
    for item in (text or "").replace("\n", "").split(","):
        if not item.strip():
            continue
        try:
            domain, _server, seq = parse_gtid(item)
        except ValueError:
            continue
        positions[domain] = max(seq, positions.get(domain, 0))
    return positions
