"""What a Juju admin does, on a real controller: deploy, relate, back up, restore, hold, copy.

The tests run in order on one temporary model (`-x` stops at the first failure) and each
checks data, not just exit codes: a point-in-time restore must give back the table's exact
row count and checksum at the chosen second.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any

import jubilant
import pytest

from tests.integration import helpers
from tests.integration.environment import S3Settings
from tests.integration.helpers import DATABASE, MANAGER

MAIN, SECOND = "s3-main", "s3-second"
S3_INTEGRATOR_CHANNEL_DEFAULT = "2/edge"

#: what earlier tests found, for the later ones (the tests run in file order)
seen: dict[str, Any] = {}


def test_deploy_relate_and_configure(juju: jubilant.Juju, charms: dict[str, Path], s3: S3Settings):
    channel = os.environ.get("S3_INTEGRATOR_CHANNEL", S3_INTEGRATOR_CHANNEL_DEFAULT)
    juju.deploy(
        charms[DATABASE], DATABASE, base=helpers.base(), config={"flavour": helpers.flavour()}
    )
    juju.deploy(
        charms[MANAGER],
        MANAGER,
        base=helpers.base(),
        config={"backup-schedule": "", "backup-location": MAIN},
    )
    credentials = juju.add_secret(
        "s3-credentials",
        {
            "access-key": s3.access_key,
            "secret-key": s3.secret_key,
        },
    )
    for app, second in ((MAIN, False), (SECOND, True)):
        juju.deploy("s3-integrator", app, channel=channel)
        juju.grant_secret("s3-credentials", app)
        juju.config(app, s3.integrator_config(str(credentials), second=second))
        juju.integrate(f"{MANAGER}:s3", app)
    juju.integrate(f"{MANAGER}:database-backup", f"{DATABASE}:database-backup")

    status = juju.wait(
        lambda s: (
            jubilant.all_active(s, MANAGER, DATABASE, MAIN, SECOND) and jubilant.all_agents_idle(s)
        ),
        error=jubilant.any_error,
    )

    manager_status = status.apps[MANAGER].units[f"{MANAGER}/0"].workload_status
    assert manager_status.current == "active", manager_status.message
    helpers.sql(juju, "CREATE DATABASE IF NOT EXISTS shop")
    helpers.sql(
        juju,
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), qty INT)",
        "shop",
    )
    helpers.insert_rows(juju, "orders", 500, "before-backup")


def test_create_backup_and_list_it(juju: jubilant.Juju):
    started = helpers.run(juju, "create-backup", kind="full", description="integration full")
    assert started["status"] in ("requested", "running"), started

    record = helpers.succeeded(juju, started["job-id"])

    rows = helpers.backups(juju, location=MAIN)
    mine = [r for r in rows if r["backup-id"] == record["backup-id"]]
    assert len(mine) == 1, rows
    assert mine[0]["kind"] == "full"
    assert mine[0]["status"] == "complete"
    assert mine[0]["size-bytes"] > 0
    assert mine[0]["description"] == "integration full"
    seen["full"] = record["backup-id"]


def test_restore_to_a_point_in_time(juju: jubilant.Juju):
    helpers.insert_rows(juju, "orders", 200, "before-target")
    time.sleep(1.5)
    target = helpers.server_time(juju)
    at_target = helpers.table_state(juju, "orders")
    time.sleep(2)
    helpers.insert_rows(juju, "orders", 300, "after-target")
    assert helpers.table_state(juju, "orders") != at_target
    helpers.wait_for_shipping(juju)

    started = helpers.run(juju, "restore", **{"point-in-time": target})
    assert started["recovered-from-backup"] == seen["full"]
    helpers.succeeded(juju, started["job-id"])
    juju.wait(lambda s: jubilant.all_active(s, DATABASE), error=jubilant.any_error)

    assert helpers.table_state(juju, "orders") == at_target
    after = helpers.sql(
        juju, "SELECT COUNT(*) FROM orders WHERE name LIKE 'after-target%'", "shop"
    )
    assert after == [["0"]]


def test_incremental_and_logical_backups(juju: jubilant.Juju):
    helpers.insert_rows(juju, "orders", 100, "for-incremental")

    incremental = helpers.succeeded(
        juju, helpers.run(juju, "create-backup", kind="incremental")["job-id"]
    )
    logical = helpers.succeeded(
        juju, helpers.run(juju, "create-backup", kind="logical", databases=["shop"])["job-id"]
    )

    rows = {r["backup-id"]: r for r in helpers.backups(juju, location=MAIN)}
    assert rows[incremental["backup-id"]]["kind"] == "incremental"
    assert rows[incremental["backup-id"]]["parent"]
    assert rows[logical["backup-id"]]["kind"] == "logical"
    seen["incremental"] = incremental["backup-id"]
    seen["logical"] = logical["backup-id"]


def test_preserve_backup_and_refuse_a_past_date(juju: jubilant.Juju):
    until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).date()

    held = helpers.run(juju, "preserve-backup", **{"backup-id": seen["full"], "until": str(until)})
    with pytest.raises(jubilant.TaskError) as refused:
        helpers.run(juju, "preserve-backup", **{"backup-id": seen["full"], "until": "2001-01-01"})

    assert held["preserve-until"].startswith(str(until))
    assert "in the past" in refused.value.task.message
    row = next(r for r in helpers.backups(juju) if r["backup-id"] == seen["full"])
    assert row["hold"].startswith(str(until))


def test_retention_keeps_the_held_backup(juju: jubilant.Juju):
    juju.config(MANAGER, {"retention-min-count": 1, "retention-max-count": 1})
    juju.wait(lambda s: jubilant.all_active(s, MANAGER), error=jubilant.any_error)

    newest = helpers.succeeded(juju, helpers.run(juju, "create-backup", kind="full")["job-id"])

    deadline = time.monotonic() + 300
    ids: set[str] = set()
    while time.monotonic() < deadline:
        ids = {r["backup-id"] for r in helpers.backups(juju, location=MAIN)}
        if seen["logical"] not in ids:
            break
        time.sleep(10)
    assert seen["full"] in ids, "the held backup was deleted"
    assert newest["backup-id"] in ids
    assert seen["logical"] not in ids, "retention deleted nothing"
    assert seen["incremental"] not in ids
    seen["newest"] = newest["backup-id"]


def test_copy_backup_to_the_second_location(juju: jubilant.Juju):
    started = helpers.run(juju, "copy-backup", **{"backup-id": seen["newest"], "to": SECOND})

    record = helpers.succeeded(juju, started["job-id"])

    rows = helpers.backups(juju, location=SECOND)
    copy = next(r for r in rows if r["backup-id"] == started["backup-id"])
    source = next(
        r for r in helpers.backups(juju, location=MAIN) if r["backup-id"] == seen["newest"]
    )
    assert copy["status"] == "complete"
    assert copy["size-bytes"] == source["size-bytes"]
    assert record["source-backup-id"] == seen["newest"]


def test_bad_input_fails_the_action_with_a_clear_message(juju: jubilant.Juju):
    with pytest.raises(jubilant.TaskError) as unknown:
        helpers.run(juju, "restore", **{"backup-id": "no-such-backup"})
    with pytest.raises(jubilant.TaskError) as nothing:
        helpers.run(juju, "restore")

    assert "list-backups" in unknown.value.task.message
    assert "backup-id=" in nothing.value.task.message


def test_clear_history_forgets_finished_jobs(juju: jubilant.Juju):
    before = helpers.jobs(juju)

    cleared = helpers.run(juju, "clear-history")

    after = helpers.jobs(juju)
    assert int(cleared["removed"]) > 0
    assert len(after) < len(before)
    assert all(r["status"] not in helpers.FINISHED for r in after)
