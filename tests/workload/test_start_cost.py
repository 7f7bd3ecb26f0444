"""Start cost and clean exits on the real MariaDB and RGW (issue 14, findings 4 and 7).

- A logical restore whose client fails mid-stream leaves no zstd-* decoder thread (and
  no frame in memory) while its error is still held.
- A physical restore asks the server's status once, detects its flavour once and does
  not read `backup.json` again when the caller hands it over; the data is restored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import pytest

from database_backup.catalog import Catalog, new_backup_id
from database_backup.mysql import (
    CommandServer,
    ConnectionSpec,
    LogicalRestoreError,
    backup_full,
    restore_logical,
    restore_physical,
)
from database_backup.mysql.flavour import Flavour
from database_backup.mysql.flavour import detect as real_detect
from database_backup.mysql.logical.dump import backup_logical
from database_backup.storage import S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.threads import lingering_threads
from tests.workload.engine_helpers import change, connection, fill, start_command, stop_command

CLUSTER = "model-0123/start-cost"


def test_a_logical_restore_failing_mid_stream_leaves_no_decoder_thread(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    fill(server, "bulk", rows=200_000)  # ~30 MiB of SQL: more frames than the decoder holds
    meta = backup_logical(
        connection(server), catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
        databases=["bulk"], workdir=tmp_path / "b",
    )  # fmt: skip
    server.execute(
        "DROP USER IF EXISTS 'reader'@'%'; CREATE USER 'reader'@'%' IDENTIFIED BY 'pw-reader';"
        " GRANT SELECT ON *.* TO 'reader'@'%';"
    )
    reader = ConnectionSpec(user="reader", password="pw-reader", port=server.port)
    before = server.checksum_tables("bulk")

    # its first statement (DROP TABLE) is refused: the client exits, the pipe breaks
    with pytest.raises(LogicalRestoreError) as failure:
        restore_logical(reader, catalog, meta.backup_id, workdir=tmp_path / "r")

    assert "stopped" in str(failure.value)  # mid-stream, not refused before the apply
    assert failure.value.__traceback__ is not None  # still held, as a caller holds it
    assert lingering_threads("zstd-") == []
    assert server.checksum_tables("bulk") == before


def test_a_physical_restore_asks_each_thing_once(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    fill(server, "shop", rows=5_000)
    at_backup = server.checksum_tables("shop")
    meta = backup_full(
        connection(server), catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
        workdir=tmp_path / "b",
    )  # fmt: skip
    change(server, "shop")
    status_log = tmp_path / "status.log"
    control = CommandServer(
        server.datadir,
        start=start_command(server),
        stop=stop_command(server),
        status=["sh", "-c", f'echo status >> {status_log} && exec mariadb-admin '
                f'--defaults-file="{server.defaults_file}" ping'],
    )  # fmt: skip
    detections: list[Flavour] = []

    def detect(
        conn: ConnectionSpec, *, client: str | None = None, workdir: str | Path | None = None
    ) -> Flavour:
        found = real_detect(conn, client=client, workdir=workdir)
        detections.append(found)
        return found

    gets: list[str] = []
    real_get, real_open = storage.get_bytes, storage.open_stream

    def get_bytes(key: str) -> bytes:
        gets.append(key)
        return real_get(key)

    def open_stream(key: str) -> BinaryIO:
        with status_log.open("a") as log:
            log.write("download\n")
        return real_open(key)

    monkeypatch.setattr("database_backup.mysql.physical.restore.detect", detect)
    monkeypatch.setattr(storage, "get_bytes", get_bytes)
    monkeypatch.setattr(storage, "open_stream", open_stream)
    status_log.write_text("")

    result = restore_physical(
        connection(server), control, catalog, meta.backup_id, workdir=tmp_path / "r", meta=meta
    )

    assert result.backup_id == meta.backup_id
    assert server.checksum_tables("shop") == at_backup
    assert len(detections) == 1
    before_download = status_log.read_text().partition("download")[0]
    assert before_download.split() == ["status"]  # asked once (was twice)
    assert not [key for key in gets if key.endswith("backup.json")]
