"""The CLI restore's start: the server is probed while the storage client is built.

Building the S3 client imports the AWS SDK (GIL-bound, the longest step before the first
request); asking the server's status and flavour runs processes (the GIL is free). The
CLI runs the probe in a thread beside it, reads `backup.json` once and hands both to the
engine, which asks neither again.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from database_backup.cli import restore as cli_restore
from database_backup.cli.state import StateFile
from database_backup.contract import EngineSpec
from database_backup.mysql.flavour import Flavour, for_name
from database_backup.mysql.physical import restore as engine_restore
from tests.unit.mysql.test_start_cost_restore import _meta

_PAUSE = 0.4
_META = _meta()


class _Spans:
    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def span(self, name: str) -> None:
        start = time.monotonic()
        time.sleep(_PAUSE)
        with self._lock:
            self.spans.setdefault(name, []).append((start, time.monotonic()))

    def overlap(self, first: str, second: str) -> bool:
        (a_start, a_end), (b_start, b_end) = self.spans[first][0], self.spans[second][0]
        return a_start < b_end and b_start < a_end


class _StopError(Exception):
    pass


class _Catalog:
    def __init__(self, spans: _Spans) -> None:
        self._spans = spans
        self.cluster_id = "model/db"

    def read_metadata(self, backup_id: str) -> Any:
        self._spans.span("get backup.json")
        return _META


def _spec(tmp_path: Path) -> EngineSpec:
    return EngineSpec.from_json({
        "cluster-id": "model/db",
        "storage": {"bucket": "b", "endpoint": "http://127.0.0.1:1", "path": "p",
                    "access-key": "a", "secret-key": "s"},
        "server": {"type": "command", "datadir": str(tmp_path / "data"), "start": ["true"],
                   "stop": ["true"], "status": ["true"]},
        "workdir": str(tmp_path / "work"),
    })  # fmt: skip


def test_the_probe_overlaps_the_client_and_the_engine_asks_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spans = _Spans()
    handed: dict[str, Any] = {}

    def make_catalog(spec: EngineSpec) -> _Catalog:
        spans.span("sdk import + client")
        return _Catalog(spans)

    def detect(conn: object, *, workdir: object = None, client: object = None) -> Flavour:
        spans.span("client: flavour")
        return for_name("mariadb", "10.11.6-MariaDB")

    def restore_physical(*args: object, **kwargs: Any) -> Any:
        handed.update(kwargs)
        raise _StopError

    class _NoTimelines:
        def __init__(self, catalog: object) -> None:
            pass

        def timelines(self) -> list[str]:
            return []

    monkeypatch.setattr(cli_restore, "make_catalog", make_catalog)
    monkeypatch.setattr(engine_restore, "detect", detect)
    monkeypatch.setattr(cli_restore, "restore_physical", restore_physical)
    monkeypatch.setattr(cli_restore, "BinlogCatalog", _NoTimelines)
    args = argparse.Namespace(
        backup_id="20260101T000000Z", parallel=1, verify_timeout=5.0, no_ship_first=False,
        source_cluster=None, databases=None, tables=None,
    )  # fmt: skip

    with pytest.raises(_StopError):
        cli_restore.cmd_restore(args, _spec(tmp_path), StateFile(None, "restore"))

    assert len(spans.spans["get backup.json"]) == 1  # read once, by the CLI
    assert handed["meta"] is _META
    probe = handed["probe"]
    assert probe.running
    assert probe.flavour is not None
    assert probe.flavour.name == "mariadb"
    assert spans.overlap("sdk import + client", "client: flavour")
