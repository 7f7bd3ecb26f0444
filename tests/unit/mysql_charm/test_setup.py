"""Scenario tests of install, configuration and the unit's status."""

from __future__ import annotations

from typing import Any

from ops import testing

from .conftest import PASSWORD, FakeLauncher, FakeServer, job, relation, relation_in, state


def test_install_installs_configures_and_creates_the_backup_user(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    server.installed = False

    out = ctx.run(ctx.on.install(), state(secrets=[]))

    assert [
        "install",
        "mysql-server",
        "mysql-client",
        "percona-xtrabackup",
        "zstd",
    ] in server.calls
    config = server.state_dir.parents[2] / "etc/mysql/mysql.conf.d/zz-mysql-server-charm.cnf"
    text = config.read_text()
    for line in ("server_id = 1", "gtid_mode = ON", "log_bin = /var/lib/mysql-binlog/bin"):
        assert line in text.splitlines()
    assert ["systemctl", "restart", "mysql"] in server.calls
    (secret,) = [s for s in out.secrets if s.label == "backup-user"]
    assert secret.owner == "unit"
    assert server.users == [secret.tracked_content["password"]]
    assert out.unit_status == testing.ActiveStatus("")


def test_mariadb_flavour_installs_mariadb(ctx: testing.Context[Any], server: FakeServer) -> None:
    server.installed = False

    ctx.run(ctx.on.install(), state(config={"flavour": "mariadb"}))

    assert [
        "install",
        "mariadb-server",
        "mariadb-client",
        "mariadb-backup",
        "zstd",
    ] in server.calls
    config = server.state_dir.parents[2] / "etc/mysql/mariadb.conf.d/99-mysql-server-charm.cnf"
    assert "gtid_strict_mode = ON" in config.read_text()


def test_config_changed_without_changes_does_not_restart(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    ctx.run(ctx.on.config_changed(), state())
    server.calls.clear()

    ctx.run(ctx.on.config_changed(), state())

    assert ["systemctl", "restart", "mysql"] not in server.calls
    assert server.users == ["backup-pw-123"]  # the existing password, set once


def test_invalid_config_blocks_and_installs_nothing(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    server.installed = False

    out = ctx.run(ctx.on.install(), state(config={"flavour": "postgres"}))

    assert server.calls == []
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config: flavour:")


def test_a_stopped_server_blocks_with_the_reason(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    server.running = False

    out = ctx.run(ctx.on.update_status(), state())

    assert ["systemctl", "restart", "mysql"] in server.calls  # update-status retries the setup
    assert out.unit_status == testing.ActiveStatus("")


def test_a_server_that_stays_down_blocks(ctx: testing.Context[Any], server: FakeServer) -> None:
    server.running = False

    out = ctx.run(ctx.on.leader_elected(), state())

    assert out.unit_status == testing.BlockedStatus(
        "the mysql service is not running; see juju debug-log (retried on update-status)"
    )


def test_without_the_backup_user_the_unit_waits(ctx: testing.Context[Any]) -> None:
    out = ctx.run(ctx.on.leader_elected(), state(secrets=[]))

    assert out.unit_status == testing.WaitingStatus("the backup user is not created yet")


def test_configuration_waits_while_a_restore_runs(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    from database_backup.jobs import JobRecord, JobStore

    store = JobStore(server.state_dir / "jobs")
    record = JobRecord(key="1-r", job_id="r", scope="1", kind="restore", command=("restore",),
                       labels={"request": {}, "backup-id": "b-1"})  # fmt: skip
    store.create(record, {})  # not finished; its lock is free, so it counts as running

    ctx.run(ctx.on.config_changed(), state(secrets=[PASSWORD]))

    assert ["systemctl", "restart", "mysql"] not in server.calls
    assert server.users == []


def test_the_backup_user_is_set_again_after_a_restore(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = ctx.run(ctx.on.update_status(), state(rel))
    assert server.users == ["backup-pw-123"]
    out = ctx.run(ctx.on.relation_changed(relation_in(out, rel.id), remote_unit=0), out)
    launcher.finish(launcher.started[0], result={"backup-id": "20261122T071500Z-3fa9"})

    out = ctx.run(ctx.on.update_status(), out)
    ctx.run(ctx.on.update_status(), out)

    # the restored `mysql` schema came from the backup: the user is set once more, once
    assert server.users == ["backup-pw-123", "backup-pw-123"]
