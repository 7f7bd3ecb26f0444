"""Scenario B end to end: an incremental chain restored, and a logical per-database backup."""

from __future__ import annotations

import json
from pathlib import Path

from tests.infra.ceph import CephS3

from .data import Servers, add_orders, catalog, create_shop, snapshot, two_regions
from .harness import TwoCharms
from .scenario_a import succeeded

CONFIG = {"backup-location": "region-a", "backup-schedule": "", "compression-level": 1}


def test_incremental_chain_and_logical_backup(
    ceph: CephS3, servers: Servers, tmp_path: Path
) -> None:
    region_a, _ = two_regions(ceph)
    db = servers("b")
    create_shop(db)
    create_shop(db, "crm", rows=300)
    harness = TwoCharms(tmp_path, [region_a], config=CONFIG, log=print)
    with harness.running():
        unit = harness.deploy("mysql-server", db)
        harness.relate(unit)

        print("== full, then an incremental on top of it")
        job = harness.action("create-backup", kind="full")["job-id"]
        harness.settle()
        full = succeeded(harness, job)["backup-id"]
        add_orders(db, 700, "after-full")
        db.execute("UPDATE shop.customers SET name = UPPER(name) WHERE id < 10", "shop")
        at_incremental = snapshot(db)
        job = harness.action("create-backup", kind="incremental")["job-id"]
        harness.settle()
        record = succeeded(harness, job)
        incremental = record["backup-id"]
        assert record["kind"] == "incremental"
        assert record["parent-id"] == full
        rows = {r["backup-id"]: r for r in json.loads(harness.action("list-backups")["json"])}
        assert rows[incremental]["kind"] == "incremental"
        assert rows[incremental]["parent"] == full
        full_meta = catalog(region_a).read_metadata(full)
        incremental_meta = catalog(region_a).read_metadata(incremental)
        assert full_meta.to_lsn is not None
        assert incremental_meta.from_lsn == full_meta.to_lsn  # only what changed since

        print("== damage, then restore the incremental (the chain: full + incremental)")
        db.execute("DROP TABLE shop.customers; DELETE FROM shop.orders WHERE id % 2 = 0", "shop")
        assert snapshot(db) != at_incremental
        job = harness.action("restore", **{"backup-id": incremental})["job-id"]
        harness.settle()
        assert succeeded(harness, job)["recovered-from-backup"] == incremental
        assert snapshot(db) == at_incremental

        print("== a logical backup of one database, restored alone")
        crm_before = snapshot(db, "crm")
        job = harness.action("create-backup", kind="logical", databases=["crm"])["job-id"]
        harness.settle()
        logical = succeeded(harness, job)["backup-id"]
        rows = {r["backup-id"]: r for r in json.loads(harness.action("list-backups")["json"])}
        assert rows[logical]["kind"] == "logical"
        db.execute("DELETE FROM crm.orders WHERE qty > 4; DROP TABLE crm.customers", "crm")
        add_orders(db, 100, "after-logical")  # shop changes too: it must be left alone
        shop_now = snapshot(db)
        assert snapshot(db, "crm") != crm_before
        job = harness.action("restore", **{"backup-id": logical, "databases": ["crm"]})["job-id"]
        harness.settle()
        assert succeeded(harness, job)["recovered-from-backup"] == logical
        assert snapshot(db, "crm") == crm_before
        assert snapshot(db) == shop_now
