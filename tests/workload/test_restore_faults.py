"""Restores that must fail safely, against the real MariaDB and RGW.

Damaged artefacts and wrong keys are refused before the current data is touched; a restore
failing after the swap puts the previous data back and starts the server again.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import CommandServer, RestoreError, backup_full, restore_physical
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import (
    FaultyServer,
    change,
    connection,
    databases,
    fill,
    server_pids,
    shutdown,
    siblings,
    start_command,
    stop_command,
)

CLUSTER = "model-0123/faults"


def _backup_then_change(
    server: MariaDBServer,
    catalog: Catalog,
    work: Path,
    *,
    key: bytes | None = None,
    compression_level: int | None = 3,
) -> tuple[BackupMetadata, dict[str, str]]:
    """Back up fresh data, change it; return the metadata and the CURRENT checksums."""
    fill(server, "shop", rows=5_000)
    meta = backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        key=key,
        compression_level=compression_level,
        workdir=work / "backup",
    )
    change(server, "shop")
    return meta, server.checksum_tables("shop")


def _artefact(catalog: Catalog, meta: BackupMetadata) -> str:
    return catalog.artefact_key(meta.backup_id, meta.artefacts[0])


def _assert_untouched(server: MariaDBServer, pid: int | None, current: dict[str, str]) -> None:
    """Same server process (never stopped), same data, nothing left beside the datadir."""
    assert server.is_running()
    assert server.pid == pid
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert siblings(server.datadir) == []


def test_truncated_artefact_is_refused_before_touching_data(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    meta, current = _backup_then_change(server, catalog, tmp_path)
    data = storage.get_bytes(_artefact(catalog, meta))
    storage.put_bytes(_artefact(catalog, meta), data[: len(data) - 4096])
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r"
        )

    assert "not touched" in str(failure.value)
    assert failure.value.data_changed is False
    _assert_untouched(server, pid, current)


@pytest.mark.parametrize("compression_level", [None, 3], ids=["plain", "zstd"])
def test_tampered_artefact_is_refused_before_touching_data(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    tmp_path: Path,
    compression_level: int | None,
):
    meta, current = _backup_then_change(
        server, catalog, tmp_path, compression_level=compression_level
    )
    data = bytearray(storage.get_bytes(_artefact(catalog, meta)))
    data[len(data) // 2] ^= 0x01
    storage.put_bytes(_artefact(catalog, meta), bytes(data))
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r"
        )

    # caught by our SHA-256/zstd checks or by the xbstream chunk checksums, whichever first:
    # uncompressed, the unpacker's CRC-32 of the chunk reads it first (before EOF's SHA-256)
    message = str(failure.value)
    assert meta.backup_id in message
    if compression_level is None:
        assert "cannot be unpacked (xbstream is damaged: checksum mismatch" in message
    else:
        assert "failed verification" in message
    assert "not touched" in message
    _assert_untouched(server, pid, current)


def test_artefact_with_valid_framing_but_wrong_digest_is_refused(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    """An artefact replaced by another well-formed backup stream: only the digest tells."""
    meta, current = _backup_then_change(server, catalog, tmp_path, compression_level=None)
    other = backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)) + "-other",
        compression_level=None,
        workdir=tmp_path / "other",
    )
    replacement = storage.get_bytes(_artefact(catalog, other))
    storage.put_bytes(_artefact(catalog, meta), replacement)
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r"
        )

    assert "failed verification" in str(failure.value)
    assert "not touched" in str(failure.value)
    _assert_untouched(server, pid, current)


def test_wrong_key_is_refused_before_touching_data(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta, current = _backup_then_change(server, catalog, tmp_path, key=generate_key())
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server),
            server,
            catalog,
            meta.backup_id,
            key=generate_key(),
            workdir=tmp_path / "r",
        )
    assert "not touched" in str(failure.value)
    _assert_untouched(server, pid, current)

    with pytest.raises(RestoreError, match="encrypted: provide its encryption key"):
        restore_physical(
            connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r2"
        )
    _assert_untouched(server, pid, current)


def test_unknown_backup_is_refused(server: MariaDBServer, catalog: Catalog, tmp_path: Path):
    pid = server.pid
    with pytest.raises(RestoreError, match="not found"):
        restore_physical(
            connection(server), server, catalog, "20260101T000000Z-none", workdir=tmp_path
        )
    assert server.pid == pid


def test_failed_stop_leaves_the_current_data_and_the_server_running(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta, current = _backup_then_change(server, catalog, tmp_path)
    control = FaultyServer(server)
    control.fail_stops = 1
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server), control, catalog, meta.backup_id, workdir=tmp_path / "r"
        )

    assert str(failure.value) == (
        "the restore ended while stopping the server (cannot stop it: injected fault: the "
        "server refused to stop); the current data was not touched; the server runs"
    )
    assert failure.value.data_changed is False
    _assert_untouched(server, pid, current)


def test_failed_start_after_swap_puts_previous_data_back(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta, current = _backup_then_change(server, catalog, tmp_path)
    control = FaultyServer(server)
    control.fail_starts = 1

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server), control, catalog, meta.backup_id, workdir=tmp_path / "r"
        )

    message = str(failure.value)
    assert "start step" in message
    assert "injected fault" in message
    assert "previous data was put back" in message
    assert failure.value.data_changed is False
    assert control.calls == ["stop", "start", "stop", "start"]  # stopped again: it may start
    assert server.is_running()
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert siblings(server.datadir) == []


def test_server_refusing_the_restored_data_puts_previous_data_back(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta, current = _backup_then_change(server, catalog, tmp_path)
    control = FaultyServer(server)

    def damage_staged_data() -> None:
        # the prepared copy waits beside the datadir; break InnoDB's system tablespace
        (staged,) = [
            p for p in server.datadir.parent.iterdir() if p.is_dir() and ".restore-" in p.name
        ]
        with (staged / "ibdata1").open("r+b") as handle:
            handle.truncate(16384)

    control.before_stop = damage_staged_data

    with pytest.raises(RestoreError) as failure:
        restore_physical(
            connection(server),
            control,
            catalog,
            meta.backup_id,
            workdir=tmp_path / "r",
            verify_timeout=20,
        )

    assert "start step" in str(failure.value)
    assert "InnoDB" in str(failure.value)  # the server's own complaint, in brief
    assert "previous data was put back" in str(failure.value)
    assert server.is_running()
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert siblings(server.datadir) == []


def test_a_start_that_gave_up_on_a_starting_server_is_stopped_before_put_back(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    """The first start spawns the server and fails at once, as one past its timeout does.

    The status (a ping) cannot see a server still recovering, so putting the previous data
    back must stop it anyway: moving a datadir under a starting server and starting a
    second one on it loses data.
    """
    meta, current = _backup_then_change(server, catalog, tmp_path)
    tried = tmp_path / "tried"
    spawn = " ".join(shlex.quote(arg) for arg in server.server_args())
    first_gives_up = (
        f"if [ ! -e {tried} ]; then touch {tried}; "
        f"setsid {spawn} >/dev/null 2>&1 </dev/null & exit 1; fi; "
        'exec "$@"'
    )
    control = CommandServer(
        server.datadir,
        start=["sh", "-c", first_gives_up, "sh", *start_command(server)],
        stop=stop_command(server),
        status=["mariadb-admin", f"--defaults-file={server.defaults_file}", "ping"],
    )

    try:
        with pytest.raises(RestoreError) as failure:
            restore_physical(
                connection(server), control, catalog, meta.backup_id, workdir=tmp_path / "r"
            )

        assert "start step" in str(failure.value)
        assert "previous data was put back" in str(failure.value)
        assert failure.value.data_changed is False
        assert len(server_pids(server)) == 1
        assert server.checksum_tables("shop") == current
        assert "after_backup" in databases(server)
        assert siblings(server.datadir) == []
    finally:  # the module's later tests want the fixture's own server process back
        shutdown(server)
        server.start()
