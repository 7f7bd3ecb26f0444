"""mysql-server alone, packed: installing from an archive, configuring, refusing a new flavour.

The archive is the fake's (hooktools.py): `apt-get install` records the package and leaves
the server binary in the unit's own /usr/sbin; systemctl and the SQL client record and
pretend. What is real: the charm's code from the packed venv, its files on its machine
(the unit's directories mounted over /etc/mysql, /var/lib...), and Juju's rules.
"""

from __future__ import annotations

import json
import time

from .deployment import Deployment
from .test_backup_manager import closed_port

APP = "mysql-server"
MARIADB = {
    "mariadb-server": "1:10.11.6-0+deb12u1",
    "mariadb-client": "1:10.11.6-0+deb12u1",
    "mariadb-backup": "1:10.11.6-0+deb12u1",
    "zstd": "1.5.4+dfsg2-5",
}


def test_install_configures_the_server_and_creates_the_backup_user(deployment: Deployment):
    deployment.offer_packages(MARIADB)
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "mysql-peers")

    deployment.hook(unit, "install").check()
    deployment.hook(unit, "update-status").check()

    machine = deployment.machine(unit)
    [option_file] = (machine / "etc/mysql").rglob("*.cnf")
    assert "log_bin = /var/lib/mysql-binlog/bin" in option_file.read_text()
    assert (machine / "var/lib/mysql-binlog").is_dir()
    assert ["restart", "mariadb"] in deployment.calls(unit, "systemctl")
    assert set(deployment.state["installed"][unit]) == set(MARIADB)
    [secret] = [s for s in deployment.state["secrets"].values() if s["label"] == "backup-user"]
    assert secret["owner"] == unit  # the unit's own secret, not the application's
    password = secret["revisions"][-1]["password"]
    assert len(deployment.state["sql"]) == 1  # the user is created once, not on each hook
    assert password not in json.dumps([deployment.state["calls"], deployment.state["log"]])
    assert deployment.status(unit) == ("active", "")


def test_a_later_flavour_change_is_refused_not_installed(deployment: Deployment):
    deployment.offer_packages(MARIADB)
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "mysql-peers")
    deployment.hook(unit, "install").check()
    installs = len(deployment.calls(unit, "apt-get"))

    deployment.configure(APP, flavour="mysql")
    deployment.hook(unit, "config-changed").check()

    status, message = deployment.status(unit)
    assert status == "blocked"
    assert "flavour=mariadb" in message  # says how to get back
    assert len(deployment.calls(unit, "apt-get")) == installs  # mysql-server never installed


def test_a_drill_job_starts_the_engines_verify_with_no_secret_on_its_command_line(
    deployment: Deployment,
):
    deployment.offer_packages(MARIADB)
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "mysql-peers")
    deployment.add_remote_app("backup-manager")
    rel = deployment.relate("backup-manager", "database-backup", APP, "database-backup")
    keys = deployment.user_secret(
        {"access-key": "AK-drill", "secret-key": "SK-drill-secret"}, APP, owner="backup-manager"
    )
    drill = {
        "job-id": "drill-1",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {
            "bucket": "db-backups",
            "endpoint": f"http://127.0.0.1:{closed_port()}",
            "credentials-secret-id": keys,
        },
        "verify-backup-id": "20261121T070000Z-0b1c",
        "requested-at": "2026-11-22T07:00:00Z",
    }
    deployment.set_bag(rel, "backup-manager", {"jobs": json.dumps([drill])})
    deployment.hook(unit, "install").check()

    deployment.hook(
        unit, "database-backup-relation-changed", relation=rel, remote_unit="backup-manager/0"
    ).check()

    [status] = json.loads(deployment.bag(rel, unit)["jobs"])
    assert status["status"] == "running", status
    assert status["verify-backup-id"] == "20261121T070000Z-0b1c"
    assert "backup-id" not in status
    [job_dir] = (deployment.machine(unit) / "var/lib/mysql-server-charm/jobs").iterdir()
    record = json.loads((job_dir / "job.json").read_text())
    assert record["command"] == [
        "verify", "--backup-id", "20261121T070000Z-0b1c", "--job-id", "drill-1",
        "--unit", unit, "--scratch-root", "/var/lib/database-backup/drills",
    ]  # fmt: skip
    assert "SK-drill-secret" not in json.dumps([record, deployment.state["log"], status])
    # the worker ends on its own (the endpoint is closed): wait, so no process outlives the test
    deadline = time.monotonic() + 60
    while not (job_dir / "finished.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (job_dir / "finished.json").exists(), (job_dir / "worker.log").read_text()[-2000:]
    assert not (job_dir / "spec.json").exists()  # the secrets' file is gone with the job
