"""Region lost: everything of model A is gone but the bucket; model B clones A's cluster back.

Model A (a manager and the database application `mysql-a`) writes, takes an encrypted
backup with the key the manager generated (the admin exports it), ships binlogs with the
lag-bounded timer (the open binlog is rotated once its oldest write is `lag - period` old),
keeps writing, and stops. Then A's server, its data directory and both charms' state are
destroyed. In model B (another model uuid) a new manager, given only the S3 credentials and
the admin's key (`encryption-key-secret`), and a fresh, empty database application
`mysql-b` list A's cluster, restore it to the time of A's last write, and hold the same data
(CHECKSUM TABLE and row hashes of every table). The RPO measured is printed and bounded by
the configured lag plus one shipping period. Real MariaDB and RGW; both charms through
Scenario (`harness.TwoCharms`).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mysql_provider.shipping import shipping_cadence
from ops import testing

from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.interface import format_time
from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import shutdown

from .data import Servers, Snapshot, add_orders, catalog, create_shop, snapshot, utc_now
from .harness import S3Location, TwoCharms
from .provider import Deployment
from .scenario_a import succeeded

MODEL_A = testing.Model(name="prod", uuid="0b6c3f52-9a7e-4d1b-8c2f-5e4d3a2b1c0a")
MODEL_B = testing.Model(name="recovery", uuid="7e1d9b40-2c5a-4f83-9d6e-1a0b8c7d6e5f")
DATABASES = ("shop", "crm")
LAG = 20  # binlog-max-lag: the RPO the admin asked for
PERIOD, ROTATE_AFTER = shipping_cadence(LAG)  # what mysql-server sets up: 10 s, 10 s
CONFIG = {
    "backup-location": "store",
    "encryption": True,
    "backup-schedule": "",
    "binlog-max-lag": LAG,
}


def _state(db: MariaDBServer) -> dict[str, Snapshot]:
    return {name: snapshot(db, name) for name in DATABASES}


def _shipped(harness: TwoCharms, location: S3Location, deployment: Deployment) -> tuple[int, Any]:
    """(highest GTID seq of domain 0 in storage, newest shipped event time) of a cluster."""
    index = BinlogCatalog(catalog(location, deployment.app, harness.model.uuid))
    seq, newest = 0, None
    for timeline in index.timelines():
        for entry in index.entries(timeline.timeline_id):
            newest = max(newest or entry.last_event_at, entry.last_event_at)
            for gtid in entry.last_gtids:
                domain, _server, number = gtid.split("-")
                if domain == "0":
                    seq = max(seq, int(number))
    return seq, newest


def _ship_until(
    harness: TwoCharms, location: S3Location, app: Deployment, seq: int, last_run: float
) -> float:
    """Fire the shipping timer every PERIOD s (after `last_run`) until GTID `seq` is shipped.

    Returns when the run that shipped it ended; fails after LAG + 2 periods.
    """
    deadline = time.monotonic() + LAG + 2 * PERIOD
    while time.monotonic() < deadline:
        time.sleep(max(0.0, last_run + PERIOD - time.monotonic()))
        harness.ship_binlogs(app)
        last_run = time.monotonic()
        if _shipped(harness, location, app)[0] >= seq:
            return last_run
    raise AssertionError(f"GTID 0-*-{seq} was not shipped within {LAG + 2 * PERIOD} s")


def _model_a(
    harness: TwoCharms, location: S3Location, db: MariaDBServer, out: dict[str, Any]
) -> None:
    """Model A's life: backups, shipping, writes; ends after its last write reached storage."""
    say = harness.note
    for name in DATABASES:
        create_shop(db, name, rows=2_000 if name == "shop" else 300)
    say("mysql> -- shop (2,000 orders) and crm (300 orders) on mysql-a's server")
    app = harness.deploy("mysql-a (model A)", db, app="mysql-a")
    harness.relate(app)
    out["key"] = harness.action("export-encryption-key")["key"]
    job = harness.action("create-backup", description="nightly")["job-id"]
    harness.settle()
    out["backup"] = succeeded(harness, job)["backup-id"]

    add_orders(db, 500, "morning")
    say("mysql> INSERT INTO shop.orders ...   -- 500 morning orders")
    morning = int(db.scalar("SELECT @@gtid_binlog_pos").split("-")[2])
    # the timer runs every PERIOD s; the last writes come just after the run that shipped
    # everything before them: the worst phase (they wait longest to be old enough)
    last_run = _ship_until(harness, location, app, morning, time.monotonic() - PERIOD)
    time.sleep(1.0)
    add_orders(db, 200, "noon")
    add_orders(db, 40, "noon", "crm")
    db.execute("DELETE FROM shop.orders WHERE qty = 5", "shop")
    written, out["last-write"] = time.monotonic(), utc_now()
    wanted = int(db.scalar("SELECT @@gtid_binlog_pos").split("-")[2])
    out["state"] = _state(db)
    say("mysql> INSERT ... 200 shop orders, 40 crm orders; DELETE ... qty = 5   -- last writes")
    say(f"last write at {format_time(out['last-write'])}; then model A is quiet")
    for name, shot in out["state"].items():
        say(f"  CHECKSUM TABLE {name}: {shot}")
    assert _shipped(harness, location, app)[0] < wanted, "the last writes are not shipped yet"
    _ship_until(harness, location, app, wanted, last_run)
    out["exposed"] = time.monotonic() - written
    out["newest"] = _shipped(harness, location, app)[1]
    out["shipping"] = harness.provider_action(app, "shipping-status")


def test_region_lost(ceph: CephS3, servers: Servers, tmp_path: Path) -> None:
    bucket = unique_bucket_name("region")
    ceph.create_bucket(bucket)
    location = S3Location(
        "store", ceph.endpoint, bucket, ceph.access_key, ceph.secret_key, ceph.region
    )
    out: dict[str, Any] = {}
    started = time.monotonic()

    print("\n=== model A: backups and binlog shipping ===")
    root_a = tmp_path / "model-a"
    harness_a = TwoCharms(root_a, [location], config=CONFIG, log=print, model=MODEL_A)
    db_a = servers("a")
    with harness_a.running():
        _model_a(harness_a, location, db_a, out)
    prefix = catalog(location, "mysql-a", MODEL_A.uuid)
    stored_a = sorted(o.key for o in prefix.storage.list(prefix.prefix))
    last_write: datetime = out["last-write"]
    rpo_point = (out["newest"] - last_write.replace(microsecond=0)).total_seconds()
    print(
        f"RPO measured: the last write was only on mysql-a's server for {out['exposed']:.1f} s"
        f" (binlog-max-lag {LAG} s, shipping period {PERIOD} s, rotation after"
        f" {ROTATE_AFTER} s); newest point reachable from storage"
        f" {format_time(out['newest'])}, {rpo_point:+.0f} s from the last write"
    )

    print("\n=== model A is lost: server stopped, datadir and binlogs deleted, charms gone ===")
    shutdown(db_a)
    db_a.wipe()
    shutil.rmtree(root_a)
    key, source = out.pop("key"), f"{MODEL_A.uuid}/mysql-a"
    seen_a = "\n".join(harness_a.transcript)
    del harness_a

    print("\n=== model B: a new manager with the S3 credentials and the admin's key ===")
    print("$ juju add-secret backup-key key=<the exported key>; juju grant-secret ...")
    admin = testing.Secret(tracked_content={"key": key})
    config_b = {**CONFIG, "encryption-key-secret": admin.id}
    harness_b = TwoCharms(
        tmp_path / "model-b", [location], config=config_b, log=print, model=MODEL_B,
        secrets=[admin],
    )  # fmt: skip
    db_b = servers("b")
    target = last_write.replace(microsecond=0) + timedelta(seconds=1)  # its second's end
    with harness_b.running():
        app_b = harness_b.deploy("mysql-b (model B)", db_b, app="mysql-b")
        harness_b.relate(app_b)
        before = {name: db_b.query(f"SHOW DATABASES LIKE '{name}'") for name in DATABASES}
        rows = json.loads(harness_b.action("list-backups")["json"])
        restore = harness_b.action(
            "restore", **{"source-cluster": source, "point-in-time": format_time(target)}
        )
        harness_b.settle()
        record = succeeded(harness_b, restore["job-id"])
        restored = _state(db_b)
        for name, shot in restored.items():
            harness_b.note(f"  CHECKSUM TABLE {name} on mysql-b: {shot}")
        harness_b.update_status()
        job = harness_b.action("create-backup", description="first of mysql-b")["job-id"]
        harness_b.settle()
        own_backup = succeeded(harness_b, job)["backup-id"]
        harness_b.action("list-backups")
    print(f"\n(wall time {time.monotonic() - started:.0f} s)")

    # A's cluster was listed by a manager that never knew it, and restored from it
    assert before == {name: [] for name in DATABASES}, "mysql-b started empty"
    listed = {(r["backup-id"], r["cluster"]) for r in rows}
    assert (out["backup"], source) in listed
    assert restore["recovered-from-backup"] == out["backup"]
    assert record["recovered-from-backup"] == out["backup"]
    # every table as it was after A's last write
    assert restored == out["state"]
    # RPO: the last write reached storage within the lag plus one shipping period, and the
    # newest point reachable is not older than it (nothing written was lost)
    assert out["exposed"] <= LAG + PERIOD
    assert 0 <= rpo_point <= LAG + PERIOD
    assert out["shipping"]["running"] is True
    # B writes under its own prefix; A's prefix is as A left it (B only read it)
    mine = catalog(location, "mysql-b", MODEL_B.uuid).list_backups()
    theirs = catalog(location, "mysql-a", MODEL_A.uuid).list_backups()
    assert [b.backup_id for b in mine] == [own_backup]
    assert [b.backup_id for b in theirs] == [out["backup"]]
    assert sorted(o.key for o in prefix.storage.list(prefix.prefix)) == stored_a
    # the key never showed in the transcript
    assert key not in seen_a
    assert key not in "\n".join(harness_b.transcript)
    assert isinstance(harness_b.state.unit_status, testing.ActiveStatus)
    assert isinstance(app_b.state.unit_status, testing.ActiveStatus)
