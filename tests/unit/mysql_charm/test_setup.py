"""Scenario tests of install, configuration and the unit's status."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any

import yaml
from ops import testing

from .conftest import (
    MYSQL,
    PASSWORD,
    FakeApt,
    FakeLauncher,
    FakeServer,
    dpkg_lock_error,
    job,
    make_ctx,
    relation,
    relation_in,
    state,
)

MYSQL_PACKAGES = ["mysql-server", "mysql-client", "percona-xtrabackup", "zstd"]


def test_install_installs_configures_and_creates_the_backup_user(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False

    out = ctx.run(ctx.on.install(), state(secrets=[]))

    assert fake_apt.calls == [["update"], ["add", *MYSQL_PACKAGES]]
    config = server.state_dir.parents[2] / "etc/mysql/mysql.conf.d/zz-mysql-server-charm.cnf"
    text = config.read_text()
    for line in ("server_id = 1", "gtid_mode = ON", "log_bin = /var/lib/mysql-binlog/bin"):
        assert line in text.splitlines()
    assert ["systemctl", "restart", "mysql"] in server.calls
    (secret,) = [s for s in out.secrets if s.label == "backup-user"]
    assert secret.owner == "unit"
    assert server.users == [secret.tracked_content["password"]]
    assert out.unit_status == testing.ActiveStatus("")


def test_mariadb_flavour_installs_mariadb(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False

    out = ctx.run(ctx.on.install(), state(config={"flavour": "mariadb"}))

    assert ["add", "mariadb-server", "mariadb-client", "mariadb-backup", "zstd"] in fake_apt.calls
    assert out.unit_status == testing.ActiveStatus("")
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
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False

    out = ctx.run(ctx.on.install(), state(config={"flavour": "postgres"}))

    assert fake_apt.calls == []
    assert [c for c in server.calls if c[:2] != ["systemctl", "is-active"]] == []
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


# -- installing: retried until it succeeds ------------------------------------------------


def test_a_failed_install_is_retried_on_update_status(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False
    fake_apt.install_failures.append(dpkg_lock_error())  # first boot: unattended-upgrades

    out = ctx.run(ctx.on.install(), state(secrets=[]))

    assert out.unit_status == testing.BlockedStatus(
        "could not install mysql-server, mysql-client, percona-xtrabackup, zstd: Could not get "
        "lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (unattended-upgr); "
        "retried on update-status"
    )
    assert server.users == []

    out = ctx.run(ctx.on.update_status(), out)

    assert fake_apt.calls[-1] == ["add", *MYSQL_PACKAGES]
    assert ["systemctl", "restart", "mysql"] in server.calls
    assert len(server.users) == 1
    assert out.unit_status == testing.ActiveStatus("")


def test_a_failed_install_is_still_reported_by_other_hooks(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False
    fake_apt.install_failures.append(dpkg_lock_error())
    out = ctx.run(ctx.on.install(), state(secrets=[]))

    out = ctx.run(ctx.on.leader_elected(), out)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("could not install mysql-server")


def test_a_failed_package_list_update_is_retried_on_config_changed(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False
    stderr = b"E: Could not get lock /var/lib/apt/lists/lock. It is held by process 99 (apt-get)\n"
    fake_apt.update_failures.append(
        subprocess.CalledProcessError(100, ["apt-get", "update"], b"", stderr)
    )
    out = ctx.run(ctx.on.install(), state(secrets=[]))
    assert out.unit_status == testing.BlockedStatus(
        "could not install mysql-server, mysql-client, percona-xtrabackup, zstd: Could not get "
        "lock /var/lib/apt/lists/lock. It is held by process 99 (apt-get); retried on "
        "update-status"
    )

    out = ctx.run(ctx.on.config_changed(), out)

    assert fake_apt.calls == [["update"], ["update"], ["add", *MYSQL_PACKAGES]]
    assert out.unit_status == testing.ActiveStatus("")


def test_once_installed_update_status_does_not_call_apt(
    ctx: testing.Context[Any], fake_apt: FakeApt
) -> None:
    out = ctx.run(ctx.on.install(), state())
    fake_apt.calls.clear()

    ctx.run(ctx.on.update_status(), out)

    assert fake_apt.calls == []


def test_changing_the_flavour_after_install_blocks_and_installs_nothing(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    out = ctx.run(ctx.on.install(), state())
    fake_apt.calls.clear()
    changed = dataclasses.replace(out, config={"flavour": "mariadb"})

    out = ctx.run(ctx.on.config_changed(), changed)

    assert fake_apt.calls == []
    assert out.unit_status == testing.BlockedStatus(
        "flavour=mariadb, but this unit runs mysql: the flavour is chosen at deployment and "
        "changing it does not migrate the data; set flavour=mysql again"
    )


# -- the backup tool must be able to back up the server ----------------------------------


def test_an_unusable_backup_tool_blocks_with_what_to_do(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    # Ubuntu 22.04's percona-xtrabackup, beside its MySQL 8.0
    server.versions["xtrabackup"] = "xtrabackup version 2.4.29 based on MySQL server 5.7.44"
    rel = relation(job("backup-1"))

    out = ctx.run(ctx.on.install(), state(rel))
    out = ctx.run(ctx.on.relation_changed(relation_in(out, rel.id), remote_unit=0), out)

    message = (
        "percona-xtrabackup 2.4 cannot back up MySQL 8.0; install percona-xtrabackup-80 from "
        "Percona's repository, or deploy mysql-server with flavour=mariadb"
    )
    assert out.unit_status == testing.BlockedStatus(message)
    assert launcher.started == []
    (published,) = json.loads(relation_in(out, rel.id).local_unit_data["jobs"])
    assert published["status"] == "error"
    assert message in published["message"]


def test_the_tool_check_passes_once_the_right_tool_is_installed(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    server.versions["xtrabackup"] = "xtrabackup version 2.4.29 based on MySQL server 5.7.44"
    out = ctx.run(ctx.on.install(), state())
    assert isinstance(out.unit_status, testing.BlockedStatus)

    server.versions["xtrabackup"] = "xtrabackup version 8.0.35-31 based on MySQL server 8.0.35"
    out = ctx.run(ctx.on.update_status(), out)

    assert out.unit_status == testing.ActiveStatus("")


def test_the_default_flavour_is_mariadb(server: FakeServer, fake_apt: FakeApt) -> None:
    ctx = make_ctx(server)
    server.installed = False

    out = ctx.run(ctx.on.install(), testing.State(leader=True))

    assert ["add", "mariadb-server", "mariadb-client", "mariadb-backup", "zstd"] in fake_apt.calls
    assert out.unit_status == testing.ActiveStatus("")
    options = yaml.safe_load((MYSQL / "config.yaml").read_text())["options"]
    assert options["flavour"]["default"] == "mariadb"


# -- one unit: the leader runs everything, other units say to remove them ----------------


def test_a_second_unit_is_blocked_and_says_to_remove_it(server: FakeServer) -> None:
    ctx = make_ctx(server, unit_id=1)
    peers = testing.PeerRelation("mysql-peers", peers_data={0: {}})

    out = ctx.run(ctx.on.update_status(), state(peers, leader=False))

    assert out.unit_status == testing.BlockedStatus(
        "mysql-server runs one unit: this unit's server is not replicated; remove it "
        "(juju remove-unit mysql-server/1)"
    )


def test_the_leader_of_two_units_stays_active(ctx: testing.Context[Any]) -> None:
    peers = testing.PeerRelation("mysql-peers", peers_data={1: {}})

    out = ctx.run(ctx.on.update_status(), state(peers))

    assert out.unit_status == testing.ActiveStatus("")


def test_before_any_install_succeeded_a_new_flavour_is_installed_and_checked(
    ctx: testing.Context[Any], server: FakeServer, fake_apt: FakeApt
) -> None:
    server.installed = False
    fake_apt.install_failures.append(dpkg_lock_error())
    out = ctx.run(ctx.on.install(), state())
    assert isinstance(out.unit_status, testing.BlockedStatus)

    server.versions["mariabackup"] = "mariabackup based on MariaDB server 10.6.16-MariaDB"
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"flavour": "mariadb"}))

    assert fake_apt.calls[-1] == [
        "add",
        "mariadb-server",
        "mariadb-client",
        "mariadb-backup",
        "zstd",
    ]
    assert out.unit_status == testing.BlockedStatus(
        "mariabackup 10.6.16 cannot back up MariaDB 10.11.8 (they must be the same version); "
        "install the mariadb-backup package of the server's version"
    )
