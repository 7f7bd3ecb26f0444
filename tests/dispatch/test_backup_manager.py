"""backup-manager alone, packed: what needs no database application (see test_flow.py)."""

from __future__ import annotations

import socket

from .deployment import Deployment

APP = "backup-manager"


def closed_port() -> int:
    """A loopback port nothing listens on (S3 unreachable: connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_install_without_storage_blocks_with_the_fix(deployment: Deployment):
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "manager-peers")

    run = deployment.hook(unit, "install").check()

    status, message = deployment.status(unit)
    assert status == "blocked"
    assert "s3-integrator" in message
    assert "ops 3." in "\n".join(run.log)  # ops ran, from the packed venv
    assert (deployment.charms[APP] / "venv/bin/python").is_symlink()  # made by dispatch


def test_only_the_leader_writes_the_cron_entry(deployment: Deployment):
    leader, follower = deployment.add_app(
        APP, APP, units=2, config={"backup-schedule": "15 3 * * *"}
    )
    deployment.peer(APP, "manager-peers")

    for unit in (leader, follower):
        deployment.hook(unit, "config-changed").check()

    [cron] = [path.read_text() for path in (deployment.machine(leader) / "etc/cron.d").iterdir()]
    assert "15 3 * * *" in cron
    assert f"juju-exec {leader}" in cron
    assert "JUJU_DISPATCH_PATH=hooks/scheduled-backup" in cron
    assert not list((deployment.machine(follower) / "etc/cron.d").iterdir())


def test_the_cron_entry_follows_leadership(deployment: Deployment):
    first, second = deployment.add_app(APP, APP, units=2, config={"backup-schedule": "0 4 * * *"})
    deployment.peer(APP, "manager-peers")
    deployment.hook(first, "config-changed").check()

    deployment.set_leader(second)
    deployment.hook(second, "leader-elected").check()
    deployment.hook(first, "update-status").check()  # the old leader's next hook

    assert not list((deployment.machine(first) / "etc/cron.d").iterdir())
    [cron] = [path.read_text() for path in (deployment.machine(second) / "etc/cron.d").iterdir()]
    assert f"juju-exec {second}" in cron


def test_list_backups_with_no_storage_reachable(deployment: Deployment):
    credentials = deployment.user_secret({"access-key": "AK", "secret-key": "SK-x"}, APP)
    config = {
        "s3-bucket": "backups",
        "s3-endpoint": f"http://127.0.0.1:{closed_port()}",
        "s3-credentials": credentials,
    }
    [unit] = deployment.add_app(APP, APP, config=config)
    deployment.peer(APP, "manager-peers")
    deployment.add_app("mysql-server", "mysql-server")
    deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    run = deployment.action(unit, "list-backups").check()

    assert run.failed is not None
    assert "unreachable" in run.failed
    assert "SK-x" not in run.failed


def test_an_s3_integrator_relation_becomes_a_location(deployment: Deployment):
    leader, follower = deployment.add_app(APP, APP, units=2)
    deployment.peer(APP, "manager-peers")
    deployment.add_remote_app("s3-eu")
    rel = deployment.relate(APP, "s3", "s3-eu", "s3-credentials")
    keys = deployment.user_secret({"access-key": "AK", "secret-key": "SK-y"}, APP, owner="s3-eu")
    deployment.set_bag(
        rel,
        "s3-eu",
        {
            "version": "1",
            "bucket": "backups-eu",
            "endpoint": f"http://127.0.0.1:{closed_port()}",
            "secret-extra": keys,
        },
    )

    runs = [
        deployment.hook(unit, "s3-relation-changed", relation=rel, remote_unit="s3-eu/0")
        for unit in (leader, follower)
    ]

    for run in runs:
        run.check()
    for unit in (leader, follower):  # storage found: the next thing to fix is said
        assert deployment.status(unit) == (
            "blocked",
            "no database related: juju integrate backup-manager:database-backup <db-app>",
        )
    assert "SK-y" not in str(deployment.state["relations"])
