"""Scenario A, shared by the test and the demo: the admin's whole backup story, end to end.

relate -> create-backup -> success -> list-backups -> more rows, note the time, more rows
-> restore to that time (PITR) -> the data as it was then -> preserve-backup -> retention
keeps the held backup and deletes an older one -> copy-backup to another region -> restore
that copy onto a fresh MariaDB (a new mysql-server deployment) -> the same data -> a
scheduled restore drill of the newest backup passes and shows in list-backups.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from scenario.state import _Event

from database_backup.interface import format_time
from tests.infra.mariadb import MariaDBServer

from .data import Snapshot, add_orders, create_shop, snapshot, utc_now
from .harness import TwoCharms
from .provider import Deployment

#: the manager's options for this story: encrypted, no cron, keep one backup besides holds
CONFIG: dict[str, Any] = {
    "backup-location": "region-a",
    "encryption": True,
    "backup-schedule": "",
    "retention-min-count": 1,
    "retention-max-count": 1,
}


@dataclass
class Outcome:
    """What the story saw, for the test's assertions."""

    backups: dict[str, str] = field(default_factory=dict)  # name -> backup id
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    target: str = ""
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def succeeded(harness: TwoCharms, job_id: str) -> dict[str, Any]:
    """The job's history record; it must have succeeded."""
    record = harness.job(job_id)
    assert record["status"] == "success", (record, harness.hooks[-30:])
    return record


def listing(
    harness: TwoCharms, name: str, outcome: Outcome, **params: Any
) -> list[dict[str, Any]]:
    """`list-backups` rows (JSON), remembered under `name`."""
    import json

    rows = json.loads(harness.action("list-backups", **params)["json"])
    outcome.rows[name] = rows
    return rows


def play(
    harness: TwoCharms,
    db: MariaDBServer,
    fresh_db: Callable[[], MariaDBServer],
    say: Callable[[str], None] = lambda text: None,
) -> Outcome:
    """Play scenario A; return what happened (the caller checks it)."""
    out = Outcome()
    say("A database with 2,000 orders, and the two charms related")
    create_shop(db)
    first = harness.deploy("mysql-server (region A)", db)
    harness.relate(first)

    say("An on-demand backup")
    out.snapshots["b1"] = snapshot(db)
    job = harness.action("create-backup", description="before the sale")["job-id"]
    harness.settle()
    out.backups["b1"] = succeeded(harness, job)["backup-id"]
    listing(harness, "after-b1", out)

    say("More orders; note the time; more orders and a mistake")
    add_orders(db, 500, "sale")
    harness.note("mysql> INSERT INTO shop.orders ...   -- 500 orders of the sale")
    time.sleep(1.1)
    target = utc_now().replace(microsecond=0)
    out.target = format_time(target)
    out.snapshots["target"] = snapshot(db)
    harness.note(f"the admin notes the time: {out.target}  (data: {out.snapshots['target']})")
    while utc_now() < target + timedelta(seconds=1.2):
        time.sleep(0.1)
    add_orders(db, 300, "late")
    harness.note("mysql> INSERT INTO shop.orders ...   -- 300 late orders")
    db.execute("DELETE FROM shop.orders WHERE qty = 3", "shop")
    harness.note("mysql> DELETE FROM shop.orders WHERE qty = 3;   -- the mistake")
    out.snapshots["mistake"] = snapshot(db)
    db.execute("FLUSH BINARY LOGS")
    harness.note("(the server closes its binlog; the unit's shipping timer ships closed binlogs)")
    harness.ship_binlogs(first)
    out.results["shipping"] = harness.provider_action(first, "shipping-status")

    say("Point-in-time recovery to the noted time")
    result = harness.action("restore", **{"point-in-time": out.target})
    out.results["pitr"] = result
    harness.settle()
    out.results["pitr-record"] = succeeded(harness, result["job-id"])
    out.snapshots["after-pitr"] = snapshot(db)

    say("Hold the first backup; two more backups; retention keeps one plus the held one")
    out.results["preserve"] = harness.action(
        "preserve-backup",
        **{"backup-id": out.backups["b1"], "until": format_time(utc_now() + timedelta(days=30))},
    )
    job = harness.action("create-backup")["job-id"]
    harness.settle()
    out.backups["b2"] = succeeded(harness, job)["backup-id"]
    listing(harness, "after-b2", out)
    add_orders(db, 200, "evening")
    harness.note("mysql> INSERT INTO shop.orders ...   -- 200 evening orders")
    out.snapshots["b3"] = snapshot(db)
    job = harness.action("create-backup", description="end of day")["job-id"]
    harness.settle()
    out.backups["b3"] = succeeded(harness, job)["backup-id"]
    listing(harness, "after-b3", out)

    say("Copy the newest backup to region B (another bucket, another S3 user)")
    copy = harness.action("copy-backup", **{"backup-id": out.backups["b3"], "to": "region-b"})
    harness.settle()
    out.results["copy"] = succeeded(harness, copy["job-id"])
    out.backups["copy"] = copy["backup-id"]
    listing(harness, "region-b", out, location="region-b")

    say("Region A is lost: a fresh mysql-server on a fresh MariaDB, restored from region B")
    harness.unrelate(first)
    harness.configure(**{"backup-location": "region-b"})
    db2 = fresh_db()
    second = harness.deploy("mysql-server (region B)", db2)
    harness.relate(second)
    result = harness.action(
        "restore", **{"backup-id": out.backups["copy"], "location": "region-b"}
    )
    harness.settle()
    out.results["dr-record"] = succeeded(harness, result["job-id"])
    out.snapshots["dr"] = snapshot(db2)

    say("The new deployment carries on: its backups go to region B (retention keeps 1 there)")
    harness.update_status()
    job = harness.action("create-backup", description="first backup after the move")["job-id"]
    harness.settle()
    out.backups["after-dr"] = succeeded(harness, job)["backup-id"]
    listing(harness, "region-b-end", out, location="region-b")

    say("A scheduled restore drill proves the newest backup restores")
    drill(harness, second, out)
    harness.action("list-jobs")
    return out


def drill(harness: TwoCharms, deployment: Deployment, out: Outcome) -> None:
    """Turn the drill schedule on, fire it as cron would, and list the verified backup.

    The schedule fires every minute: the slot is seeded when the option is set, so the
    first slot due is the next minute; at that minute cron runs `juju-exec <unit>
    JUJU_DISPATCH_PATH=hooks/scheduled-drill ./dispatch`, which is the event fired here.
    """
    scratch = harness.root / f"{deployment.name} drills"
    harness.note(f"$ juju config {deployment.app} drill-directory={scratch}")
    config = {**deployment.state.config, "drill-directory": str(scratch)}
    deployment.state = dataclasses.replace(deployment.state, config=config)
    harness.provider_event(deployment, "config-changed", deployment.ctx.on.config_changed())
    harness.configure(**{"drill-schedule": "* * * * *"})
    next_minute = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    while utc_now() < next_minute + timedelta(seconds=1):
        time.sleep(0.2)
    harness.note("(cron, at the next minute: juju-exec ... hooks/scheduled-drill)")
    harness.manager_event("scheduled-drill", _Event("scheduled_drill"))
    drills = [r for r in harness.history() if r.get("type") == "drill"]
    assert len(drills) == 1, drills
    harness.settle()
    out.results["drill-record"] = harness.job(drills[0]["job-id"])
    harness.configure(**{"drill-schedule": ""})
    listing(harness, "drilled", out, location="region-b")
