"""A storage failure during a drill says nothing about the backup; a missing artefact does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from database_backup.catalog import Catalog
from database_backup.mysql.drill.errors import DrillFailedError, DrillRefusedError
from database_backup.mysql.drill.run import DrillRequest, _Drill, _plan, _Tally
from database_backup.mysql.drill.scratch import ScratchServer
from database_backup.mysql.flavour import for_name
from database_backup.storage import StorageError
from tests.unit.catalog.factories import backup
from tests.unit.catalog.memstore import MemoryStore
from tests.unit.catalog.test_store import make_catalog, store_backup


class _FlakyStore(MemoryStore):
    """Serves metadata but drops the connection when an artefact is streamed."""

    def open_stream(self, key: str) -> BinaryIO:
        raise StorageError(f"connection reset while reading {key} (storage unreachable)")


def _drill(catalog: Catalog, tmp_path: Path) -> _Drill:
    request = DrillRequest(backup_id="full-1", scratch_root=tmp_path)
    directory = tmp_path / "drill-0001"
    directory.mkdir()
    server = ScratchServer(
        directory, "/nonexistent/mariadbd", for_name("mariadb", "10.11.6"),
        (os.getuid(), os.getgid()),
    )  # fmt: skip
    return _Drill(catalog, server, _plan(catalog, request, None), request, None, None, _Tally())


def test_an_unreachable_storage_is_no_verdict_on_the_backup(tmp_path: Path):
    catalog = make_catalog(_FlakyStore())
    store_backup(catalog, backup("full-1", 1))

    with pytest.raises(DrillFailedError) as caught:
        _drill(catalog, tmp_path).restore_and_check()

    message = str(caught.value)
    assert message.startswith("drill failed: the storage failed during the drill")
    assert "nothing is said about backup full-1" in message


def test_a_missing_artefact_is_a_verdict_on_the_backup(tmp_path: Path):
    catalog = make_catalog()
    meta = backup("full-1", 1)
    store_backup(catalog, meta)
    catalog.storage.delete(catalog.artefact_key("full-1", meta.artefacts[0]))

    reason = _drill(catalog, tmp_path).restore_and_check()

    assert reason is not None
    assert reason.startswith("drill failed: ")


def test_a_fresh_scratch_server_that_cannot_be_set_up_is_refused_not_failed(tmp_path: Path):
    catalog = make_catalog()
    store_backup(catalog, backup("dump-1", 1, kind="logical"))
    request = DrillRequest(backup_id="dump-1", scratch_root=tmp_path)
    directory = tmp_path / "drill-0002"
    directory.mkdir()
    server = ScratchServer(
        directory, "/nonexistent/mysqld", for_name("mysql", "8.0.36"), (os.getuid(), os.getgid())
    )
    drill = _Drill(catalog, server, _plan(catalog, request, None), request, None, None, _Tally())

    with pytest.raises(DrillRefusedError, match="could not set up a scratch server on this unit"):
        drill.restore_and_check()
