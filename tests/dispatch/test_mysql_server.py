"""mysql-server alone, packed: installing from an archive, configuring, refusing a new flavour.

The archive is the fake's (hooktools.py): `apt-get install` records the package and leaves
the server binary in the unit's own /usr/sbin; systemctl and the SQL client record and
pretend. What is real: the charm's code from the packed venv, its files on its machine
(the unit's directories mounted over /etc/mysql, /var/lib...), and Juju's rules.
"""

from __future__ import annotations

import json

from .deployment import Deployment

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
