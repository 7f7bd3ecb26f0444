"""Config `table-sums-budget`: bounded, and carried on every backup's engine command line."""

from __future__ import annotations

from typing import Any

import pytest
from mysql_provider.specs import DrillPlace, engine_job
from ops import testing

from database_backup.interface import BackupKind, JobRequest

from .conftest import FakeLauncher, job, relation, state

ADMIN = {"user": "root", "password": "", "socket": "/run/mysqld/mysqld.sock"}
BACKUP = {"user": "charm-backup", "password": "pw", "socket": "/run/mysqld/mysqld.sock"}
SERVER = {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"}


def command(request: JobRequest, budget: int | None) -> tuple[str, ...]:
    return engine_job(
        request, cluster_id="uuid/mysql-server", new_backup_id="20261122T080000Z-aaaa",
        credentials=("AK", "SK"), encryption_key=None, backup_connection=BACKUP,
        admin_connection=ADMIN, server=SERVER, workdir="/var/lib/mysql-server-charm/work",
        drill=DrillPlace(scratch_root="/var/lib/database-backup/drills"),
        table_sums_budget=budget,
    ).command  # fmt: skip


@pytest.mark.parametrize("kind", list(BackupKind))
def test_every_kind_of_backup_carries_the_budget(kind: BackupKind) -> None:
    argv = command(job("b", backup_kind=kind), 0)

    assert argv[-2:] == ("--table-sums-budget", "0")


def test_restores_and_drills_do_not_carry_it_and_none_leaves_the_engines_default() -> None:
    restore = command(job("r", job_type="restore", backup_id="20261121T070000Z-0b1c"), 30)
    drill = command(job("d", verify_backup_id="20261121T070000Z-0b1c"), 30)
    backup = command(job("b"), None)

    for argv in (restore, drill, backup):
        assert "--table-sums-budget" not in argv


def started_command(ctx: testing.Context[Any], launcher: FakeLauncher, **config: Any) -> Any:
    rel = relation(job("backup-1"))
    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel, config=config))
    (local,) = launcher.started
    return local.record.command


def test_the_backup_command_carries_the_configured_budget(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    argv = started_command(ctx, launcher, **{"table-sums-budget": 0})

    assert argv[-2:] == ("--table-sums-budget", "0")


def test_by_default_the_backup_command_carries_60_seconds(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    argv = started_command(ctx, launcher)

    assert argv[-2:] == ("--table-sums-budget", "60")


@pytest.mark.parametrize("value", [-1, 3601])
def test_a_budget_out_of_range_blocks_the_unit_saying_what_to_give(
    ctx: testing.Context[Any], value: int
) -> None:
    out = ctx.run(ctx.on.config_changed(), state(config={"table-sums-budget": value}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "table-sums-budget" in out.unit_status.message
    assert str(3600 if value > 0 else 0) in out.unit_status.message
