"""The backup's storage preflight thread and the read-ahead that covers it."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from database_backup.catalog import Catalog
from database_backup.mysql.physical.backup import BackupError, _Preflight, _ReadAhead


class _Info:
    def __init__(self, key: str) -> None:
        self.key = key
        self.size = 1


class _FakeStorage:
    """Just what the preflight uses: list(prefix)."""

    def __init__(self, keys: list[str], fail: Exception | None = None) -> None:
        self.keys = keys
        self.fail = fail

    def list(self, prefix: str) -> Iterator[_Info]:
        if self.fail is not None:
            raise self.fail
        return iter([_Info(key) for key in self.keys if key.startswith(prefix)])


class _FakeCatalog:
    def __init__(self, storage: _FakeStorage) -> None:
        self.storage = storage
        self.ensured_in: str | None = None

    def ensure_cluster(self) -> None:
        self.ensured_in = threading.current_thread().name

    def backup_prefix(self, backup_id: str) -> str:
        return f"c/backups/{backup_id}/"


def _preflight(catalog: _FakeCatalog | Callable[[], Any], backup_id: str = "b1") -> _Preflight:
    opener = catalog if callable(catalog) else (lambda: catalog)
    return _Preflight(cast(Callable[[], Catalog], opener), backup_id)


def test_preflight_runs_in_its_own_thread_and_returns_the_catalog() -> None:
    catalog = _FakeCatalog(_FakeStorage(["c/backups/other/backup.json"]))
    opened_in: list[str] = []

    def opener() -> _FakeCatalog:
        opened_in.append(threading.current_thread().name)
        return catalog

    preflight = _preflight(opener)
    assert not preflight.done()  # nothing runs before start()
    preflight.start()

    assert preflight.wait() is catalog
    assert preflight.cleared
    assert preflight.error is None
    assert opened_in == ["preflight-b1"]
    assert catalog.ensured_in == "preflight-b1"


def test_a_used_backup_id_is_refused() -> None:
    catalog = _FakeCatalog(_FakeStorage(["c/backups/b1/data.xbstream.zst"]))
    preflight = _preflight(catalog)
    preflight.start()

    with pytest.raises(BackupError, match="b1 is already used"):
        preflight.wait()
    assert not preflight.cleared  # a failed backup must then delete nothing


def test_a_storage_error_becomes_a_backup_error_with_its_cause() -> None:
    problem = RuntimeError("S3 rejected the credentials (InvalidAccessKeyId)")
    preflight = _preflight(_FakeCatalog(_FakeStorage([], fail=problem)))
    preflight.start()

    with pytest.raises(BackupError, match="cannot use the backup storage: S3 rejected") as caught:
        preflight.wait()
    assert caught.value.__cause__ is problem
    assert preflight.error is caught.value
    assert not preflight.cleared


def test_a_failing_catalog_factory_fails_the_preflight() -> None:
    def opener() -> _FakeCatalog:
        raise ValueError("bad endpoint")

    preflight = _preflight(opener)
    preflight.start()

    with pytest.raises(BackupError, match="bad endpoint"):
        preflight.wait()


def test_wait_starts_a_preflight_nobody_started() -> None:
    catalog = _FakeCatalog(_FakeStorage([]))
    preflight = _preflight(catalog)

    assert preflight.wait() is catalog


def test_settle_does_not_block_on_a_preflight_that_never_started() -> None:
    preflight = _preflight(_FakeCatalog(_FakeStorage([])))

    preflight.settle(30.0)  # returns at once: the thread was never started

    assert not preflight.done()


def _source(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


def test_read_ahead_buffers_while_busy_then_replays_everything_in_order() -> None:
    data = bytes(range(256)) * 5_000  # 1.28 MB
    ahead = _ReadAhead(_source(data))
    calls = iter([True, True, False])

    ahead.fill_while(lambda: next(calls), limit=10 * 2**20)

    assert ahead.buffered == 2 * 2**17  # two chunks read, then no longer busy
    out = b"".join(iter(lambda: ahead.read(100_003), b""))
    assert out == data
    assert ahead.buffered == 0


def test_read_ahead_stops_at_its_limit() -> None:
    data = bytes(range(256)) * (3 * 2**12)  # 3 MiB
    source = _source(data)
    ahead = _ReadAhead(source)

    ahead.fill_while(lambda: True, limit=2**18)

    assert ahead.buffered == 2**18
    assert source.tell() == 2**18  # nothing more was taken from the tool's stream
    out = b"".join(iter(lambda: ahead.read(2**20), b""))
    assert out == data


def test_read_ahead_of_a_short_stream_reaches_its_end_once() -> None:
    reads: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    ahead = _ReadAhead(Counting(b"small"))
    ahead.fill_while(lambda: True, limit=2**20)

    assert ahead.read(3) == b"sma"
    assert ahead.read(10) == b"ll"
    assert ahead.read(10) == b""
    assert ahead.read(10) == b""
    assert len(reads) == 2  # the data, then b"" (EOF is remembered, not read again)
