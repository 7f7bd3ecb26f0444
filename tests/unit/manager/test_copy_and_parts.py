"""Copy bookkeeping (launch, pick-up, dead worker), locations, time parsing and tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from backup_manager import copying, locations, tables
from backup_manager.actions import parse_when
from backup_manager.errors import ManagerError

from .fakes import FakeS3, add_backup
from .helpers import cluster, context, db_relation, history_of, s3_relation, state


def two_locations() -> testing.State:
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b", access_key="AK-B", secret_key="SK-B")
    return state(rel_a, rel_b, db_relation(), secrets=[sec_a, sec_b])


def test_copy_action_returns_at_once_and_the_next_hook_picks_the_result_up(
    s3: FakeS3, monkeypatch: pytest.MonkeyPatch
):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    launched: list[dict[str, Any]] = []

    def fake_launch(spec: dict[str, Any], state_dir: Path) -> int:
        launched.append(spec)
        return os.getpid()  # alive: the copy is still running

    monkeypatch.setattr(copying, "launch", fake_launch)
    ctx = context()
    out = ctx.run(
        ctx.on.action(
            "copy-backup", params={"backup-id": "20261120T010000Z-aaaa", "to": "region-b"}
        ),
        two_locations(),
    )
    results = ctx.action_results
    assert results is not None
    assert results["status"] == "copying"
    assert results["location"] == "region-b"
    assert results["source"] == "region-a:20261120T010000Z-aaaa"
    assert "SK-B" not in json.dumps(results)
    (spec,) = launched
    assert spec["new-backup-id"] == results["backup-id"]
    assert spec["dest"]["secret_key"] == "SK-B"  # for the 0600 spec file only
    record = history_of(out)[-1]
    assert (record["type"], record["status"]) == ("copy", "copying")

    out = ctx.run(ctx.on.update_status(), out)  # still running: nothing changes
    assert history_of(out)[-1]["status"] == "copying"

    copying.STATE_DIR.mkdir(parents=True, exist_ok=True)
    result = {"copy-id": results["job-id"], "status": "success", "size": 12, "message": "ok"}
    copying.result_path(copying.STATE_DIR, results["job-id"]).write_text(json.dumps(result))
    out = ctx.run(ctx.on.update_status(), out)
    record = history_of(out)[-1]
    assert (record["status"], record["size"], record["message"]) == ("success", 12, "ok")
    assert not copying.result_path(copying.STATE_DIR, results["job-id"]).exists()


def test_a_dead_worker_without_result_is_reported(tmp_path: Path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    results = copying.collect(tmp_path, {"copy-1": child.pid})
    assert results[0]["status"] == "error"
    assert "stopped without a result" in results[0]["message"]


def test_launch_writes_a_private_spec_and_the_worker_reports(tmp_path: Path):
    spec = {
        "copy-id": "copy-x",
        "new-backup-id": "20261122T000000Z-0000",
        "backup-id": "nope",
        "cluster-id": cluster(),
        "source": {
            "name": "a",
            "bucket": "b-a",
            "access_key": "x",
            "secret_key": "y",
            "endpoint": "http://127.0.0.1:9",
        },
        "dest": {
            "name": "b",
            "bucket": "b-b",
            "access_key": "x",
            "secret_key": "y",
            "endpoint": "http://127.0.0.1:9",
        },
    }
    path = copying.spec_path(tmp_path, "copy-x")
    pid = copying.launch(spec, tmp_path)
    assert pid > 0
    os.waitpid(pid, 0)
    assert not path.exists(), "the spec with credentials must not outlive the worker"
    result = json.loads(copying.result_path(tmp_path, "copy-x").read_text())
    print(result["message"])
    assert result["status"] == "error"
    assert result["message"].startswith("reading backup nope failed on storage location 'a'")


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


def test_the_spec_file_is_private_and_the_worker_detached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    seen: dict[str, Any] = {}

    class FakePopen:
        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            spec_file = Path(argv[-1])
            seen["mode"] = spec_file.stat().st_mode & 0o777
            seen["argv"] = argv
            seen["kwargs"] = kwargs
            self.pid = 4242

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    spec = {"copy-id": "copy-y", "dest": {"secret_key": "s"}}
    assert copying.launch(spec, tmp_path / "state") == 4242
    assert seen["mode"] == 0o600
    assert seen["argv"][1:3] == ["-m", "backup_manager.copying"]
    assert seen["kwargs"]["start_new_session"] is True
    assert "s" not in seen["argv"]
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_list_backups_works_on_a_non_leader(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(
        ctx.on.action("list-backups"), state(rel, db_relation(), secrets=[secret], leader=False)
    )
    assert ctx.action_results is not None
    assert ctx.action_results["count"] == 1
