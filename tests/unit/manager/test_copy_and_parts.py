"""Copies on the job runner (launch, pick-up, dead worker, leadership change), and more.

Also: locations, time parsing and tables.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from backup_manager import copy_status, copy_worker, copying, joblines, locations, tables
from backup_manager.actions import parse_when
from backup_manager.errors import ManagerError
from database_backup.catalog import Catalog
from database_backup.jobs import LocalJob

from .fakes import FakeS3, add_backup
from .helpers import CHARM, cluster, context, db_relation, history_of, s3_relation, state


def two_locations() -> testing.State:
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b", access_key="AK-B", secret_key="SK-B")
    return state(rel_a, rel_b, db_relation(), secrets=[sec_a, sec_b])


class FakeStart:
    """Stands in for `start_worker`: the copy's worker 'runs' while the test holds its lock."""

    def __init__(self, *, hold_lock: bool = True) -> None:
        self.hold_lock = hold_lock
        self.started: list[LocalJob] = []
        self.fds: list[int] = []

    def __call__(self, local: LocalJob, **_: Any) -> int:
        self.started.append(local)
        if self.hold_lock:
            fd = os.open(local.lock_path, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.fds.append(fd)
        return 4242

    def job(self) -> LocalJob:
        """The newest copy started (update-status may have started a retention run since)."""
        return next(job for job in reversed(self.started) if job.record.kind == "copy")

    def spec(self) -> dict[str, Any]:
        return json.loads(self.job().spec_path.read_text())

    def end(self) -> None:
        """What the worker does at the end: the engine's state, the finished record, unlock."""
        local = self.job()
        run_engine(self.spec(), local.state_path)
        assert local.state()["status"] in ("success", "error")
        local.finish(local.state()["status"], local.state().get("message"), exit_code=0)
        self.release()

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def run_engine(spec: dict[str, Any], state_file: Path | None = None) -> int:
    """The copy engine, in this process (the fake S3 is only here), as the worker runs it."""
    spec_file = (state_file.parent if state_file else Path(copying.STATE_DIR)) / "engine-spec.json"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec))
    spec_file.chmod(0o600)
    argv = ["copy", "--spec", str(spec_file)]
    if state_file is not None:
        argv += ["--state-file", str(state_file)]
    try:
        return copy_worker.main(argv)
    finally:
        spec_file.unlink(missing_ok=True)


@pytest.fixture
def fake_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStart]:
    fake = FakeStart()
    monkeypatch.setattr(copying, "start_worker", fake)
    yield fake
    fake.release()


def copy_action(ctx: testing.Context, st: testing.State) -> tuple[dict[str, Any], testing.State]:
    out = ctx.run(
        ctx.on.action(
            "copy-backup", params={"backup-id": "20261120T010000Z-aaaa", "to": "region-b"}
        ),
        st,
    )
    assert ctx.action_results is not None
    return dict(ctx.action_results), out


def record_of(out: testing.State, job_id: str) -> dict[str, Any]:
    return next(r for r in history_of(out) if r["job-id"] == job_id)


def test_copy_action_returns_at_once_and_the_next_hook_picks_the_result_up(
    s3: FakeS3, fake_start: FakeStart, tmp_path: Path
):
    meta = add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    ctx = context()
    results, out = copy_action(ctx, two_locations())
    assert results["status"] == "copying"
    assert results["location"] == "region-b"
    assert results["source"] == "region-a:20261120T010000Z-aaaa"
    assert "SK-B" not in json.dumps(results)
    (local,) = fake_start.started
    assert local.record.engine == "backup_manager.copy_worker"
    # its worker writes the copy's job lines to the manager's job log (LOG_DIR: the test's)
    assert local.record.labels["job-log"] == str(joblines.log_path())
    assert joblines.log_path().is_relative_to(tmp_path)
    spec = fake_start.spec()
    assert spec["new-backup-id"] == results["backup-id"]
    assert spec["dest"]["secret_key"] == "SK-B"  # in the 0600 spec file only
    assert local.spec_path.stat().st_mode & 0o777 == 0o600
    assert "SK-B" not in (local.dir / "job.json").read_text()
    record = history_of(out)[-1]
    assert (record["type"], record["status"]) == ("copy", "copying")

    out = ctx.run(ctx.on.update_status(), out)  # still running: nothing changes
    assert record_of(out, results["job-id"])["status"] == "copying"

    fake_start.end()
    out = ctx.run(ctx.on.update_status(), out)
    record = record_of(out, results["job-id"])
    assert (record["status"], record["size"]) == ("success", meta.stored_size)
    assert "checksum verified" in record["message"]
    assert not local.spec_path.exists()
    assert json.loads(peer_data(out).get("copies", "{}")) == {}


def test_the_copy_worker_gets_a_clean_environment_and_no_secret_on_its_command_line(
    s3: FakeS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in ("JUJU_CONTEXT_ID", "JUJU_UNIT_NAME", "JUJU_CHARM_DIR", "JUJU_AGENT_SOCKET"):
        monkeypatch.setenv(name, f"value-of-{name}")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    seen: dict[str, Any] = {}

    class FakePopen:
        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            seen.update(argv=argv, **kwargs)
            self.pid = 4242

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    spec = {"copy-id": "copy-y", "new-backup-id": "20261122T000000Z-0000",
            "dest": {"name": "b", "secret_key": "s3cr3t-b"}}  # fmt: skip
    copying.launch(spec, tmp_path / "state")
    env = seen["env"]
    assert not [name for name in env if name.startswith("JUJU_")]
    assert "HTTPS_PROXY" not in env
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "HOME", "PYTHONPATH"}
    assert seen["argv"][1:3] == ["-m", "database_backup.jobs.worker"]
    assert "s3cr3t-b" not in " ".join(seen["argv"])
    assert seen["start_new_session"] is True
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_a_copy_whose_worker_died_is_failed_with_a_reason(s3: FakeS3, fake_start: FakeStart):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    fake_start.hold_lock = False  # the worker is gone at once, nothing recorded
    ctx = context()
    results, out = copy_action(ctx, two_locations())
    out = ctx.run(ctx.on.update_status(), out)
    record = record_of(out, results["job-id"])
    assert record["status"] == "error"
    assert "stopped unexpectedly" in record["message"]
    assert "run copy-backup again" in record["message"]
    assert json.loads(peer_data(out).get("copies", "{}")) == {}


def other_unit() -> testing.Context:
    """The same application's unit 1, with its own (empty) job directory."""
    return testing.Context(CHARM, unit_id=1)


def test_leadership_change_mid_copy_the_new_leader_sees_it_finish_through_storage(
    s3: FakeS3, fake_start: FakeStart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    meta = add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    results, out = copy_action(context(), two_locations())  # leader A (unit 0) starts it
    spec = fake_start.spec()
    copy_status.write(
        Catalog(s3.bucket("bucket-b"), cluster()),
        results["backup-id"],
        copy_status.running(spec, phase="copy", unit="backup-manager/0"),
    )

    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "unit-1-state")  # unit B's disk
    ctx_b = other_unit()
    out = ctx_b.run(ctx_b.on.leader_elected(), out)
    assert record_of(out, results["job-id"])["status"] == "copying"  # fresh heartbeat

    assert run_engine(spec) == 0  # A's worker goes on and ends (it writes to storage)
    out = ctx_b.run(ctx_b.on.update_status(), out)
    record = record_of(out, results["job-id"])
    assert (record["status"], record["size"]) == ("success", meta.stored_size)
    assert json.loads(peer_data(out).get("copies", "{}")) == {}
    copied = Catalog(s3.bucket("bucket-b"), cluster()).read_metadata(results["backup-id"])
    assert copied.extra["copied-from"]["backup-id"] == "20261120T010000Z-aaaa"


def test_leadership_change_mid_copy_the_new_leader_sees_it_fail_through_storage(
    s3: FakeS3, fake_start: FakeStart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    results, out = copy_action(context(), two_locations())
    spec = fake_start.spec()
    s3.bucket("bucket-a").put_bytes(
        Catalog(s3.bucket("bucket-a"), cluster()).artefact_key(
            "20261120T010000Z-aaaa", "data.xbstream.zst"
        ),
        b"bit rot",
    )
    assert run_engine(spec) == 1
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "unit-1-state")
    ctx_b = other_unit()
    out = ctx_b.run(ctx_b.on.leader_elected(), out)
    record = record_of(out, results["job-id"])
    assert record["status"] == "error"
    assert "does not match its checksum" in record["message"]
    dest = Catalog(s3.bucket("bucket-b"), cluster())
    assert dest.list_backups(include_incomplete=True) == []  # nothing half-copied is left


def test_a_copy_whose_worker_vanished_with_the_old_leader_is_failed_not_copying_forever(
    s3: FakeS3, fake_start: FakeStart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    results, out = copy_action(context(), two_locations())
    spec = fake_start.spec()
    stale = copy_status.running(spec, phase="copy", unit="backup-manager/0")
    stale["updated-at"] = "2026-01-01T00:00:00Z"  # the heartbeat stopped long ago
    copy_status.write(Catalog(s3.bucket("bucket-b"), cluster()), results["backup-id"], stale)
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "unit-1-state")
    ctx_b = other_unit()
    out = ctx_b.run(ctx_b.on.leader_elected(), out)
    record = record_of(out, results["job-id"])
    assert record["status"] == "error"
    assert "backup-manager/0" in record["message"]
    assert "no sign of life since 2026-01-01T00:00:00Z" in record["message"]
    assert "run copy-backup again" in record["message"]


def test_a_copy_that_left_no_trace_in_storage_is_failed_after_a_while(
    s3: FakeS3, fake_start: FakeStart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    results, out = copy_action(context(), two_locations())
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "unit-1-state")
    ctx_b = other_unit()
    out = ctx_b.run(ctx_b.on.leader_elected(), out)
    assert record_of(out, results["job-id"])["status"] == "copying"  # just started
    copies = json.loads(peer_data(out)["copies"])
    copies[results["job-id"]]["started-at"] = "2026-01-01T00:00:00Z"
    out = with_peer_data(out, copies=json.dumps(copies))
    out = ctx_b.run(ctx_b.on.update_status(), out)
    record = record_of(out, results["job-id"])
    assert record["status"] == "error"
    assert "left no trace" in record["message"]


def peer_data(out: testing.State) -> dict[str, str]:
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return dict(relation.local_app_data)


def with_peer_data(out: testing.State, **values: str) -> testing.State:
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    updated = dataclasses.replace(relation, local_app_data={**relation.local_app_data, **values})
    others = [r for r in out.relations if r.id != relation.id]
    return dataclasses.replace(out, relations=[*others, updated])


def test_s3_info_with_a_ca_chain_list_and_virtual_style():
    location = locations.from_s3_info(
        "eu",
        {
            "bucket": "b-eu",
            "access-key": "ak",
            "secret-key": "sk",
            "endpoint": "https://s3.eu.example",
            "region": "eu-west-1",
            "path": "/prod/",
            "s3-uri-style": "virtual",
            "tls-ca-chain": ["-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----"],
        },
    )
    assert location is not None
    assert location.path == "prod"
    assert location.uri_style == "virtual"
    assert location.tls_ca_chain is not None
    assert location.tls_ca_chain.startswith("-----BEGIN CERTIFICATE-----")
    assert "sk" not in repr(location)
    wire = location.storage_config("secret:abc").to_dict()
    assert wire["region"] == "eu-west-1"
    assert "secret-key" not in wire
    assert locations.from_s3_info("eu", {"bucket": "b-eu"}) is None


def test_choose_location():
    loc = locations.from_options(bucket="b-1", credentials={"access-key": "a", "secret-key": "s"})
    assert locations.choose({"default": loc}).name == "default"
    with pytest.raises(locations.LocationError, match="no storage location"):
        locations.choose({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31", "2026-12-31T00:00:00+00:00"),
        ("2026-12-31T10:00:00Z", "2026-12-31T10:00:00+00:00"),
        ("2026-12-31T12:00:00+02:00", "2026-12-31T10:00:00+00:00"),
    ],
)
def test_parse_when(text: str, expected: str):
    assert parse_when(text, "until").isoformat() == expected


def test_parse_when_rejects_words():
    with pytest.raises(ManagerError, match="is not a time"):
        parse_when("next tuesday", "until")


def test_table_renders_columns_and_dashes():
    text = tables.render(
        [{"a": "x", "b": None}, {"a": "longer", "b": ["p", "q"]}], [("A", "a"), ("B", "b")]
    )
    assert text.splitlines() == ["A       B", "------  ---", "x       -", "longer  p,q"]
    assert tables.render([], [("A", "a")]) == "(none)"


def test_list_backups_works_on_a_non_leader(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(
        ctx.on.action("list-backups"), state(rel, db_relation(), secrets=[secret], leader=False)
    )
    assert ctx.action_results is not None
    assert ctx.action_results["count"] == 1


def test_the_copy_engine_refuses_a_spec_others_can_read(tmp_path: Path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"copy-id": "c"}))
    spec_file.chmod(0o644)
    state_file = tmp_path / "state.json"
    assert copy_worker.main(["copy", "--spec", str(spec_file), "--state-file", str(state_file)])
    state = json.loads(state_file.read_text())
    assert state["status"] == "error"
    assert "chmod 600" in state["message"]


def test_the_copy_worker_keeps_a_heartbeat_in_storage(s3: FakeS3, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(copy_status, "HEARTBEAT", 0.02)
    dest = Catalog(s3.bucket("bucket-b"), cluster())
    spec = {
        "copy-id": "copy-1",
        "new-backup-id": "20261122T000000Z-0000",
        "backup-id": "b",
        "source": {"name": "region-a"},
        "unit": "backup-manager/0",
    }
    progress = copy_worker.Progress(spec, None, dest)
    progress.start_heartbeat()
    try:
        deadline = time.monotonic() + 10
        key = copy_status.key(dest, "20261122T000000Z-0000")
        while s3.bucket("bucket-b").writes.count(key) < 4:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.01)
    finally:
        progress.stop_heartbeat()
    document = copy_status.read(dest, "20261122T000000Z-0000")
    assert document is not None
    assert (document["status"], document["unit"]) == ("running", "backup-manager/0")


def test_a_copy_recorded_by_an_older_revision_with_a_pid_is_judged_from_storage(s3: FakeS3):
    """Upgrade mid-copy: the peer data holds a pid; the copy is found complete in storage."""
    meta = add_backup(s3.bucket("bucket-b"), cluster(), "20261122T000000Z-0000", hours_ago=1)
    record = {"job-id": "copy-old", "type": "copy", "app": "mysql", "location": "region-b",
              "status": "copying", "backup-id": "20261122T000000Z-0000",
              "requested-at": "2026-01-01T00:00:00Z"}  # fmt: skip
    st = with_peer_data(
        two_locations(), history=json.dumps([record]), copies=json.dumps({"copy-old": 4242})
    )
    ctx = context()
    out = ctx.run(ctx.on.update_status(), st)
    assert record_of(out, "copy-old")["status"] == "success"
    assert json.loads(peer_data(out).get("copies", "{}")) == {}
    assert Catalog(s3.bucket("bucket-b"), cluster()).read_metadata(meta.backup_id)
