"""A mysql-server application removed and deployed again under the same name.

Its catalog prefix (`<model-uuid>/mysql-server`) is the old one's, so the new server's
backups and shipped binlogs go where the old server's are. Its binlogs must be shipped
(on a timeline of their own): point-in-time recovery of the new server depends on them.
"""

from __future__ import annotations

from pathlib import Path

from database_backup.catalog.binlogs import BinlogCatalog
from tests.infra.ceph import CephS3

from .data import Servers, add_orders, catalog, create_shop, two_regions
from .harness import TwoCharms


def test_a_replacement_deployment_ships_its_own_binlogs(
    ceph: CephS3, servers: Servers, tmp_path: Path
) -> None:
    region_a, _ = two_regions(ceph)
    harness = TwoCharms(tmp_path, [region_a], config={"backup-schedule": ""}, log=print)
    with harness.running():
        old = servers("old")
        create_shop(old)
        first = harness.deploy("mysql-server (old)", old)
        harness.relate(first)
        add_orders(old, 100, "old")
        old.execute("FLUSH BINARY LOGS")
        harness.ship_binlogs(first)
        assert harness.provider_action(first, "shipping-status")["message"] == (
            "shipped 1 binlog(s)"
        )
        harness.unrelate(first)

        new = servers("new")
        create_shop(new, rows=100)
        second = harness.deploy("mysql-server (new)", new)
        harness.relate(second)
        new.execute("FLUSH BINARY LOGS")
        harness.ship_binlogs(second)
        status = harness.provider_action(second, "shipping-status")

    index = BinlogCatalog(catalog(region_a))
    shipped_by = {
        server
        for timeline in index.timelines()
        for entry in index.entries(timeline.timeline_id)
        for server in entry.server_ids
    }
    assert new.server_id in shipped_by, status
