"""The start of a physical restore: what runs before the first download, and in parallel.

Before the first byte a restore reads `backup.json` (a storage GET), asks whether the
server runs and asks the running server its flavour and datadir (a client process).
These are independent: the GET overlaps the local checks, the server's state is asked
once, and metadata already read by the caller is not read again.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.mysql import RestoreError
from database_backup.mysql.connection import ConnectionSpec
from database_backup.mysql.flavour import Flavour, for_name
from database_backup.mysql.physical import restore
from database_backup.mysql.server import ServerControl

from .xbstream_data import full_backup_record

_PAUSE = 0.4


class _Timeline:
    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[float, float]]] = {}
        self.first_download: float | None = None
        self._lock = threading.Lock()

    def span(self, name: str, pause: float = _PAUSE) -> None:
        start = time.monotonic()
        time.sleep(pause)  # a process or a request: the GIL is free meanwhile
        with self._lock:
            self.spans.setdefault(name, []).append((start, time.monotonic()))

    def count(self, name: str) -> int:
        return len(self.spans.get(name, []))

    def overlap(self, first: str, second: str) -> bool:
        (a_start, a_end), (b_start, b_end) = self.spans[first][0], self.spans[second][0]
        return a_start < b_end and b_start < a_end


def _meta() -> BackupMetadata:
    return full_backup_record("20260101T000000Z")


class _Storage:
    def __init__(self, timeline: _Timeline) -> None:
        self._timeline = timeline

    def open_stream(self, key: str) -> Any:
        self._timeline.first_download = time.monotonic()
        raise OSError("stop here: the download started")


class _Catalog:
    def __init__(self, timeline: _Timeline) -> None:
        self._timeline = timeline
        self.storage = _Storage(timeline)

    def read_metadata(self, backup_id: str) -> BackupMetadata:
        self._timeline.span("get backup.json")
        return _meta()

    def artefact_key(self, backup_id: str, name: str) -> str:
        return f"c/backups/{backup_id}/{name}"


class _Server:
    def __init__(self, datadir: Path, timeline: _Timeline) -> None:
        self.datadir = datadir
        self._timeline = timeline

    def is_running(self) -> bool:
        self._timeline.span("server status")
        return True

    def stop(self) -> None:
        raise AssertionError("the server is not stopped before the download")

    start = stop


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Timeline:
    timeline = _Timeline()
    datadir = tmp_path / "datadir"
    datadir.mkdir()

    def detect(conn: ConnectionSpec, *, workdir: object = None, client: object = None) -> Flavour:
        timeline.span("client: flavour")
        flavour = for_name("mariadb", "10.11.6-MariaDB")
        return Flavour(**{**flavour.__dict__, "datadir": str(datadir)})

    monkeypatch.setattr(restore, "detect", detect)
    return timeline


def _restore(timeline: _Timeline, tmp_path: Path, **kwargs: Any) -> float:
    server = _Server(tmp_path / "datadir", timeline)
    started = time.monotonic()
    with pytest.raises(RestoreError, match="stop here: the download started"):
        restore.restore_physical(
            ConnectionSpec(),
            cast(ServerControl, server),
            cast(Catalog, _Catalog(timeline)),
            "20260101T000000Z",
            workdir=tmp_path / "work",
            **kwargs,
        )
    return started


def test_the_metadata_get_overlaps_the_local_checks(timeline: _Timeline, tmp_path: Path):
    started = _restore(timeline, tmp_path)

    assert timeline.count("get backup.json") == 1
    assert timeline.count("server status") == 1  # asked once, not once per check
    assert timeline.count("client: flavour") == 1
    assert timeline.overlap("get backup.json", "server status")
    assert timeline.first_download is not None
    assert timeline.first_download > started


def test_metadata_the_caller_read_is_not_read_again(timeline: _Timeline, tmp_path: Path):
    _restore(timeline, tmp_path, meta=_meta())

    assert timeline.count("get backup.json") == 0
    assert timeline.count("server status") == 1
    assert timeline.count("client: flavour") == 1
