"""The binlog header reader on synthetic binlog files (event layout of MariaDB 10.x)."""

from __future__ import annotations

import io
import struct

import pytest

from database_backup.mysql.binlog.reader import (
    FORMAT_DESCRIPTION_EVENT,
    MAGIC,
    MARIADB_GTID_EVENT,
    MARIADB_GTID_LIST_EVENT,
    MARIADB_START_ENCRYPTION_EVENT,
    ROTATE_EVENT,
    BinlogFormatError,
    gtid_positions,
    parse_gtid,
    summarize,
)

QUERY_EVENT = 2
XID_EVENT = 16


def event(kind: int, timestamp: int, body: bytes, server_id: int = 1) -> bytes:
    size = 19 + len(body) + 4  # header, body, CRC32 placeholder
    return struct.pack("<IBIIIH", timestamp, kind, server_id, size, 0, 0) + body + b"\0" * 4


def gtid(seq: int, domain: int = 0) -> bytes:
    return struct.pack("<QIB", seq, domain, 0) + b"\0" * 6


def gtid_list(*entries: tuple[int, int, int]) -> bytes:
    body = struct.pack("<I", len(entries))
    for domain, server, seq in entries:
        body += struct.pack("<IIQ", domain, server, seq)
    return body


def binlog(*events: bytes) -> io.BytesIO:
    return io.BytesIO(MAGIC + b"".join(events))


def test_summary_of_a_closed_file():
    data = binlog(
        event(FORMAT_DESCRIPTION_EVENT, 1000, b"\0" * 80),
        event(MARIADB_GTID_LIST_EVENT, 1000, gtid_list((0, 1, 41), (1, 2, 7))),
        event(MARIADB_GTID_EVENT, 1005, gtid(42)),
        event(QUERY_EVENT, 1005, b"x" * 30),
        event(XID_EVENT, 1006, b"\0" * 8),
        event(MARIADB_GTID_EVENT, 1010, gtid(43), server_id=3),
        event(XID_EVENT, 1010, b"\0" * 8, server_id=3),
        event(ROTATE_EVENT, 1012, b"\0" * 8 + b"bin.000002"),
    )
    summary = summarize(data)
    assert summary.created == 1000
    assert summary.first_event == 1005
    assert summary.last_event == 1012
    assert summary.gtid_list == ["0-1-41", "1-2-7"]
    assert summary.first_gtids == {0: "0-1-42"}
    assert summary.last_gtids == {0: "0-3-43"}
    assert summary.server_ids == {1, 3}
    assert summary.closed is True
    assert summary.end_position == len(data.getvalue())
    assert summary.events == 8


def test_partial_last_event_and_limit_are_not_counted():
    complete = event(FORMAT_DESCRIPTION_EVENT, 5, b"\0" * 80) + event(QUERY_EVENT, 6, b"q")
    half = event(QUERY_EVENT, 7, b"z" * 40)[:30]
    summary = summarize(binlog(complete, half))
    assert summary.end_position == 4 + len(complete)
    assert summary.last_event == 6
    assert summary.closed is False
    limited = summarize(binlog(complete, event(QUERY_EVENT, 9, b"w")), limit=4 + len(complete))
    assert limited.last_event == 6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a binlog at all", "bad magic"),
        (MAGIC + struct.pack("<IBIIIH", 1, 2, 1, 5, 0, 0), "damaged event header"),
        (MAGIC + event(MARIADB_START_ENCRYPTION_EVENT, 1, b"\0" * 20), "encrypted"),
    ],
    ids=["magic", "size", "encrypted"],
)
def test_refusals(data: bytes, message: str):
    with pytest.raises(BinlogFormatError, match=message):
        summarize(io.BytesIO(data))


def test_gtid_helpers():
    assert parse_gtid("0-1-42") == (0, 1, 42)
    with pytest.raises(ValueError, match="not a MariaDB GTID"):
        parse_gtid("3E11FA47-71CA-11E1-9E33-C80AA9429562:23")
    assert gtid_positions("0-1-5,1-2-9, 0-3-7\n") == {0: 7, 1: 9}
    assert gtid_positions(None) == {}
