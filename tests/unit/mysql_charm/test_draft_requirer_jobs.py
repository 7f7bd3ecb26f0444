"""The draft requirer's job through the mysql-server charm: started with its inline keys.

Uses the mysql-server charm's Scenario seams (fake server, fake worker launcher): the keys
must reach the 0600 spec file and nothing else - not the job record, not the command
line, not a databag, not a log.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from tests.unit.interface.test_draft_requirer import (
    ACCESS,
    SECRET,
    assert_no_keys,
    draft_jobs,
    written_databags,
)
from tests.unit.mysql_charm.conftest import PASSWORD, FakeLauncher, FakeServer, make_ctx


@pytest.fixture
def server(tmp_path: Path) -> FakeServer:
    """A MariaDB server (the draft's examples back up MariaDB)."""
    return FakeServer("mariadb", tmp_path / "root")


def test_draft_backup_job_starts_with_the_inline_keys_in_the_spec_only(
    server: FakeServer, launcher: FakeLauncher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jobs = draft_jobs()  # a backup and a restore, exactly the draft's shape
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": json.dumps(jobs)},
    )
    ctx = make_ctx(server)
    state = testing.State(
        leader=True,
        relations=[relation, testing.PeerRelation("mysql-peers")],
        secrets=[PASSWORD],
    )

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)

    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    by_id: dict[str, dict[str, Any]] = {s["job-id"]: s for s in statuses}
    assert by_id["unique-job-id"]["status"] == "running", by_id["unique-job-id"]
    (local,) = launcher.started
    spec = json.loads(local.spec_path.read_text())
    assert stat.S_IMODE(local.spec_path.stat().st_mode) == 0o600
    assert (spec["storage"]["access-key"], spec["storage"]["secret-key"]) == (ACCESS, SECRET)
    assert spec["storage"]["bucket"] == "my-bucket"
    # The draft's restore comes with the backup: refused while the backup writes, said so.
    restore = by_id["another-unique-job-id"]
    assert restore["status"] == "error"
    assert "a restore cannot start until it has finished" in restore["message"]

    assert_no_keys(" ".join(local.record.command), "the worker's command line")
    assert_no_keys((local.dir / "job.json").read_text(), "the job record")
    assert_no_keys(written_databags(out), "a databag the provider wrote")
    assert_no_keys(json.dumps([log.message for log in ctx.juju_log]), "juju-log")
    assert_no_keys("\n".join(r.getMessage() for r in caplog.records), "a log record")
