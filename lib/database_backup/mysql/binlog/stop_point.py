"""Where a replay to a moment stops in a binlog file, found from the event headers alone.

The replication applier is told where to stop as a file offset, not a time: the offset of
the first transaction holding an event at or after the stop moment (the same transactions
`mariadb-binlog --stop-datetime` leaves out, a transaction it would cut is left out whole).
A transaction starts with its GTID event (MariaDB), so the offset is that event's. Only
the 19-byte headers are read, and the bodies of GTID events (the last GTID per domain is
what the applier is waited for).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .reader import (
    FORMAT_DESCRIPTION_EVENT,
    HEADER,
    MAGIC,
    MARIADB_GTID_EVENT,
    MARIADB_GTID_LIST_EVENT,
    MARIADB_START_ENCRYPTION_EVENT,
    ROTATE_EVENT,
    BinlogFormatError,
)

_STOP_EVENT = 3
_BINLOG_CHECKPOINT_EVENT = 161
#: events that are not part of a transaction: their time never stops the replay
_OUTSIDE = frozenset(
    {
        FORMAT_DESCRIPTION_EVENT,
        ROTATE_EVENT,
        _STOP_EVENT,
        MARIADB_GTID_LIST_EVENT,
        _BINLOG_CHECKPOINT_EVENT,
        MARIADB_START_ENCRYPTION_EVENT,
    }
)


@dataclass
class StopPoint:
    """What replaying one file from `start` up to a moment applies.

    Attributes:
        end: offset where the replay of this file ends (its size when nothing is cut).
        reached: the moment was reached in this file (later files are not replayed).
        last_gtids: last GTID per domain of the transactions before `end` ("d-s-n").
        server_ids: server ids of those transactions.
        transactions: how many transactions lie between `start` and `end`.
    """

    end: int
    reached: bool = False
    last_gtids: dict[int, str] = field(default_factory=dict[int, str])
    server_ids: set[int] = field(default_factory=set[int])
    transactions: int = 0


def find_stop(path: Path, *, start: int = 4, stop_epoch: int | None = None) -> StopPoint:
    """Walk the file's events from `start`; stop before the first transaction at `stop_epoch`.

    Args:
        path: a MariaDB binary log file.
        start: offset of the first event to replay (4 or an event boundary).
        stop_epoch: UNIX time; the first transaction with an event at or after it, and all
            after, are left out. None: to the end of the file.

    Raises:
        BinlogFormatError: not a binlog, encrypted, or a damaged event header.
    """
    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise BinlogFormatError(f"{path.name} is not a binary log (bad magic number)")
        size = handle.seek(0, os.SEEK_END)
        position = max(start, 4)
        handle.seek(position)
        point = StopPoint(end=size)
        group_start: int | None = None
        pending: tuple[int, int, str] | None = None  # the open transaction's domain, server, GTID
        while position < size:
            header = handle.read(HEADER.size)
            if len(header) < HEADER.size or position + _length(header) > size:
                # a partial event (the file is being written): its transaction is left out;
                # a partial GTID event starts the next one, so the one before is whole
                if len(header) > 4 and header[4] == MARIADB_GTID_EVENT:
                    _close(point, pending)
                    pending = None
                point.end = group_start if pending is not None and group_start else position
                return point
            timestamp, kind, server_id, length, _next, _flags = HEADER.unpack(header)
            if length < HEADER.size:
                raise BinlogFormatError(f"{path.name}: damaged event header at offset {position}")
            if kind == MARIADB_START_ENCRYPTION_EVENT:
                raise BinlogFormatError(f"{path.name} is encrypted (encrypt_binlog)")
            if kind == MARIADB_GTID_EVENT:
                body = handle.read(length - HEADER.size)
                _close(point, pending)
                group_start, pending = position, None
                if len(body) >= 12:
                    seq, domain = struct.unpack_from("<QI", body, 0)
                    pending = (domain, server_id, f"{domain}-{server_id}-{seq}")
            else:
                handle.seek(length - HEADER.size, os.SEEK_CUR)
                if kind not in _OUTSIDE and stop_epoch is not None and timestamp >= stop_epoch:
                    opened = group_start if pending is not None else None
                    point.end = opened if opened is not None else position
                    point.reached = True
                    return point
            position += length
        _close(point, pending)
        point.end = position
        return point


def _length(header: bytes) -> int:
    """The event size a header declares (at least a header, so a damaged one is seen)."""
    return max(HEADER.unpack(header)[3], HEADER.size)


def _close(point: StopPoint, pending: tuple[int, int, str] | None) -> None:
    """The transaction that `pending` opened is replayed whole."""
    if pending is None:
        return
    domain, server_id, gtid = pending
    point.last_gtids[domain] = gtid
    point.server_ids.add(server_id)
    point.transactions += 1
