"""Scenario A end to end: backup, list, PITR, hold, retention, copy, DR restore, drill."""

from __future__ import annotations

import json
from pathlib import Path

from ops import testing

from tests.infra.ceph import CephS3

from .data import Servers, two_regions
from .harness import TwoCharms
from .scenario_a import CONFIG, play


def test_scenario_a(ceph: CephS3, servers: Servers, tmp_path: Path) -> None:
    region_a, region_b = two_regions(ceph)
    harness = TwoCharms(tmp_path, [region_a, region_b], config=CONFIG, log=print)
    with harness.running():
        out = play(harness, servers("a-first"), lambda: servers("a-dr"), print)

    b1, b2, b3, copy = (out.backups[k] for k in ("b1", "b2", "b3", "copy"))
    assert len({b1, b2, b3, copy}) == 4
    # list-backups showed the first backup, complete, in region-a
    (row,) = out.rows["after-b1"]
    assert (row["backup-id"], row["status"], row["location"]) == (b1, "complete", "region-a")
    assert row["description"] == "before the sale"
    assert row["encrypted"] is True

    # PITR: the data is exactly what it was at the noted time (not before, not after)
    assert out.snapshots["target"] != out.snapshots["b1"]
    assert out.snapshots["target"] != out.snapshots["mistake"]
    assert out.snapshots["after-pitr"] == out.snapshots["target"]
    assert out.results["pitr"]["recovered-from-backup"] == b1
    assert out.results["pitr"]["point-in-time"] == out.target
    assert out.results["pitr-record"]["recovered-from-backup"] == b1

    # the hold survives retention, the unheld older backup does not
    assert out.results["preserve"]["backup-id"] == b1
    after_b2 = {r["backup-id"]: r for r in out.rows["after-b2"]}
    assert set(after_b2) == {b1, b2}
    assert after_b2[b1]["hold"]
    after_b3 = {r["backup-id"]: r for r in out.rows["after-b3"]}
    assert set(after_b3) == {b1, b3}, "retention (max 1) keeps the newest and the held one"
    assert after_b3[b1]["hold"]

    # the copy in region-b, and the fresh deployment restored from it holds the same data
    (copied,) = out.rows["region-b"]
    assert copied["backup-id"] == copy
    assert copied["copied-from"] == f"region-a:{b3}"
    assert copied["location"] == "region-b"
    assert out.results["dr-record"]["recovered-from-backup"] == copy
    assert out.snapshots["dr"] == out.snapshots["b3"]
    assert out.snapshots["b3"] != out.snapshots["target"]

    # the restored deployment works on: its backup user is back, its next backup lands in
    # region-b, where retention (max 1, no hold there) then drops the older copy
    (end,) = out.rows["region-b-end"]
    assert (end["backup-id"], end["status"]) == (out.backups["after-dr"], "complete")

    # the scheduled drill restored the newest backup into a scratch server and passed;
    # list-backups shows when, and the verdict
    drill = out.results["drill-record"]
    assert (drill["type"], drill["scheduled"]) == ("drill", True)
    assert drill["drill-of"] == out.backups["after-dr"]
    assert drill["status"] == "success", drill
    assert drill["verification"]["result"] == "pass"
    (drilled,) = out.rows["drilled"]
    assert drilled["backup-id"] == out.backups["after-dr"]
    assert drilled["verified"].endswith(" pass")  # "<checked-at> pass"
    assert drilled["verification"]["result"] == "pass"

    # binlog shipping ran on the unit (the timer's command) and says what it shipped
    assert out.results["shipping"]["running"] is True
    assert out.results["shipping"]["last-shipped-file"].startswith("bin.")

    # no secret in what the admin saw, nor in any relation databag
    secrets = [region_a.secret_key, region_b.secret_key]
    secrets += [
        s.tracked_content["key"] for s in harness.state.secrets if "key" in s.tracked_content
    ]
    assert len(secrets) == 3, "the manager made an encryption key secret"
    seen = "\n".join(harness.transcript)
    databags = [json.dumps(list(r.local_app_data.items())) for r in harness.state.relations]
    databags += [json.dumps(harness.deployments[0].unit_databag())]
    for secret in secrets:
        assert secret not in seen
        assert all(secret not in bag for bag in databags)

    # and the admin sees both charms active at the end
    assert isinstance(harness.state.unit_status, testing.ActiveStatus)
    assert all(isinstance(d.state.unit_status, testing.ActiveStatus) for d in harness.deployments)
