"""backup-manager, packed: hooks and actions through `./dispatch` with Juju's rules enforced."""

from __future__ import annotations

import json
import socket

import pytest

from .deployment import Deployment

APP = "backup-manager"


def closed_port() -> int:
    """A loopback port nothing listens on (S3 unreachable: connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def manager(deployment: Deployment) -> list[str]:
    """Two manager units with the s3-* options and a granted user secret; unit 0 leads."""
    credentials = deployment.user_secret({"access-key": "AK", "secret-key": "SK-never-seen"}, APP)
    units = deployment.add_app(
        APP,
        APP,
        units=2,
        config={
            "s3-bucket": "backups",
            "s3-endpoint": f"http://127.0.0.1:{closed_port()}",
            "s3-credentials": credentials,
        },
    )
    deployment.peer(APP, "manager-peers")
    for unit in units:
        deployment.hook(unit, "install").check()
    return units


def test_install_without_storage_blocks_with_the_fix(deployment: Deployment):
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "manager-peers")

    run = deployment.hook(unit, "install").check()

    status, message = deployment.status(unit)
    assert status == "blocked"
    assert "s3-integrator" in message
    assert "ops 3." in "\n".join(run.log)  # ops ran from the packed venv


def test_config_changed_on_the_leader_writes_the_cron_entry(
    deployment: Deployment, manager: list[str]
):
    leader, follower = manager
    deployment.configure(APP, **{"backup-schedule": "15 3 * * *"})

    for unit in manager:
        deployment.hook(unit, "config-changed").check()

    [cron] = [p.read_text() for p in (deployment.machine(leader) / "etc/cron.d").iterdir()]
    assert "15 3 * * *" in cron
    assert f"juju-exec {leader}" in cron
    assert "JUJU_DISPATCH_PATH=hooks/scheduled-backup" in cron
    assert not any((deployment.machine(follower) / "etc/cron.d").iterdir())
    assert deployment.status(follower)[0] != "error"


def test_no_secret_in_logs_databags_or_calls(deployment: Deployment, manager: list[str]):
    db = deployment.add_app("mysql-server", "mysql-server")
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")
    for unit in manager:
        deployment.hook(unit, "database-backup-relation-joined", relation=rel, remote_unit=db[0])
    deployment.action(manager[0], "create-backup").check()

    state = deployment.state
    text = json.dumps([state["log"], state["relations"], state["calls"]])
    assert "SK-never-seen" not in text


def test_joining_a_database_grants_the_secrets_and_publishes_the_request(
    deployment: Deployment, manager: list[str]
):
    db = deployment.add_app("mysql-server", "mysql-server", units=2)
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    for unit in manager:
        deployment.hook(
            unit, "database-backup-relation-joined", relation=rel, remote_unit=db[0]
        ).check()
        deployment.hook(
            unit, "database-backup-relation-changed", relation=rel, remote_unit=db[0]
        ).check()

    app_bag = deployment.bag(rel, APP)
    assert app_bag["cluster-id"].endswith("/mysql-server")
    shipping = json.loads(app_bag["log-shipping"])
    secret_id = shipping["storage-config"]["credentials-secret-id"]
    granted = deployment.state["secrets"][secret_id]
    assert granted["owner"] == APP
    assert "mysql-server" in granted["grants"]
    assert deployment.bag(rel, manager[1]) == {}  # the follower wrote nothing


def test_create_backup_on_the_leader_sends_one_job(deployment: Deployment, manager: list[str]):
    deployment.add_app("mysql-server", "mysql-server")
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")
    deployment.hook(manager[0], "database-backup-relation-joined", relation=rel).check()

    run = deployment.action(manager[0], "create-backup", kind="full").check()

    assert run.failed is None, run.failed
    jobs = json.loads(deployment.bag(rel, APP)["jobs"])
    assert [job["job-id"] for job in jobs] == [run.results["job-id"]]
    assert jobs[0]["job-type"] == "backup"
    assert "access-key" not in json.dumps(jobs)  # credentials travel by secret id only


def test_create_backup_on_a_follower_is_refused(deployment: Deployment, manager: list[str]):
    deployment.add_app("mysql-server", "mysql-server")
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    run = deployment.action(manager[1], "create-backup").check()

    assert run.failed is not None
    assert "leader" in run.failed
    assert "jobs" not in deployment.bag(rel, APP)


def test_list_jobs_and_list_backups_without_reachable_storage(
    deployment: Deployment, manager: list[str]
):
    deployment.add_app("mysql-server", "mysql-server")
    deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    jobs = deployment.action(manager[0], "list-jobs").check()
    backups = deployment.action(manager[0], "list-backups").check()

    assert jobs.failed is None, jobs.failed
    assert backups.failed is not None
    assert "backups" in backups.failed  # names the location (bucket) it could not read


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "backup-id"),
        ({"point-in-time": "yesterday at noon"}, "point-in-time"),
        ({"backup-id": "x", "application": "no-such-app"}, "no-such-app"),
    ],
)
def test_restore_refuses_bad_input_and_sends_nothing(
    deployment: Deployment, manager: list[str], params: dict[str, str], expected: str
):
    deployment.add_app("mysql-server", "mysql-server")
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    run = deployment.action(manager[0], "restore", **params).check()

    assert run.failed is not None
    assert expected in run.failed
    assert "jobs" not in deployment.bag(rel, APP)


def test_update_status_on_every_unit(deployment: Deployment, manager: list[str]):
    for unit in manager:
        deployment.hook(unit, "update-status").check()

    for unit in manager:
        assert deployment.status(unit)[0] in ("active", "blocked", "waiting")
