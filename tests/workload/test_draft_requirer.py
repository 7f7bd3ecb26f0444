"""A requirer written to the published draft gets a complete backup from the charm's code.

The draft puts the S3 keys inline in `storage-config` and names no secret. Here the
mysql-server charm runs through Scenario (as in test_provider_charm.py) with NO credentials
secret at all, receives the draft's backup job (its shape, plus the `endpoint` extension
so it reaches the loopback RGW instead of AWS), starts a real worker against the real
MariaDB and RGW, and the backup lands complete in the catalog. The keys must appear in no
databag, log, job file left behind or command line. Nothing secret is printed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ops import testing

from database_backup.catalog import Catalog
from database_backup.jobs import JobStore
from database_backup.storage import S3Config, S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import fill
from tests.workload.provider_helpers import Unit, show


def draft_backup(s3: S3Config) -> dict[str, Any]:
    """The draft's backup job (its example, slips fixed), pointed at the loopback RGW."""
    return {
        "job-id": "unique-job-id",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {
            "bucket": s3.bucket,
            "endpoint": s3.endpoint,
            "access-key": s3.access_key,
            "secret-key": s3.secret_key,
        },
    }


def request_raw(unit: Unit, jobs: list[dict[str, Any]]) -> testing.State:
    """Publish `jobs` as a draft requirer writes them (raw JSON), then relation-changed."""
    current = unit.state.get_relation(unit.relation.id)
    updated = dataclasses.replace(current, remote_app_data={"jobs": json.dumps(jobs)})
    others = [r for r in unit.state.relations if r.id != current.id]
    unit.state = dataclasses.replace(unit.state, relations=[updated, *others])
    return unit.run("database-backup-relation-changed", unit.ctx.on.relation_changed(updated))


def test_draft_job_with_inline_keys_makes_a_complete_backup(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    # No credentials secret anywhere: the keys can only come from the draft job itself.
    unit.state = dataclasses.replace(unit.state, secrets=[])
    logs: list[str] = []
    unit.run("install", unit.ctx.on.install())
    logs += [entry.message for entry in unit.ctx.juju_log]
    fill(server, "shop", rows=2_000)

    print("\n== draft-style backup job (inline keys, no secret id)")
    request_raw(unit, [draft_backup(s3_config)])
    logs += [entry.message for entry in unit.ctx.juju_log]
    show("unit databag after relation-changed", unit.databag())
    started = unit.statuses()["unique-job-id"]
    assert started["status"] == "running", started.get("message")
    (local,) = JobStore(unit.server.state_dir / "jobs").jobs()
    command = list(local.record.command)
    unit.wait_for_hand_back(1)
    unit.job_finished()
    logs += [entry.message for entry in unit.ctx.juju_log]
    show("unit databag after job-finished", unit.databag())

    done = unit.statuses()["unique-job-id"]
    assert done["status"] == "success", done.get("message")
    cluster = f"{unit.state.model.uuid}/mysql-server"
    assert done["artefact-path"] == f"{cluster}/backups/{done['backup-id']}"
    catalog = Catalog(S3Storage(dataclasses.replace(s3_config, path="")), cluster)
    meta = catalog.read_metadata(done["backup-id"])  # backup.json, written last
    assert meta.stored_size == done["size-bytes"]
    # the artefact's checksum is of its parts (backup.json): not the interface's sha256
    assert meta.sha256 is None
    assert "sha256" not in done
    assert meta.job_id == "unique-job-id"
    assert done["backup-id"] in [m.backup_id for m in catalog.list_backups()]
    # The echo keeps the draft's request fields, without the keys.
    assert set(done["storage-config"]) == {"bucket", "endpoint"}

    keys = (s3_config.access_key, s3_config.secret_key)
    leftovers = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "host").rglob("*") if p.is_file()
    )
    published = json.dumps(
        [dict(r.local_unit_data) | dict(r.local_app_data) for r in unit.state.relations]
    )
    for key in keys:
        assert key not in published, "an inline key reached a databag"
        assert key not in "\n".join(logs), "an inline key reached juju-log"
        assert key not in leftovers, "an inline key was left on the unit's disk"
        assert key not in " ".join(command), "an inline key was on the worker's command line"
    assert not list((tmp_path / "host").rglob("spec.json"))  # removed when the job ended
    print("== hook timings: " + ", ".join(f"{name} {t:.3f} s" for name, t in unit.timings))
