"""Every parameter of every manager action: bad values fail with what to give instead.

Juju checks `actions.yaml`'s schema first (types, enums, ranges, lengths, unknown names);
the charm checks every value again (Scenario, and any Juju that skips a check) with a
message naming the parameter and a valid example, and sends no job.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from backup_manager import params as params_mod

from .fakes import NOW, FakeS3, add_backup, add_binlog
from .helpers import cluster
from .test_actions import base, fail_message, jobs_of, run_action

ROOT = Path(__file__).resolve().parents[3]
ACTIONS = yaml.safe_load((ROOT / "actions.yaml").read_text())
BACKUP = "20261121T010000Z-bbbb"


def _with_backup(s3: FakeS3) -> None:
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), BACKUP, hours_ago=24)
    add_binlog(bucket, cluster())


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # create-backup
    (
        "create-backup",
        {"kind": "differential"},
        [
            "kind='differential' is not a backup kind",
            "give kind=full, kind=incremental or kind=logical",
        ],
    ),
    (
        "create-backup",
        {"kind": "logical", "tables": ["orders"]},
        ["tables: 'orders' is not database.table", "like tables='[shop.orders]'"],
    ),
    ("create-backup", {"kind": "logical", "tables": "shop.orders"}, ["tables must be a list"]),
    (
        "create-backup",
        {"kind": "logical", "databases": ["shop", "shop"]},
        ["databases: 'shop' is listed twice"],
    ),
    (
        "create-backup",
        {"kind": "logical", "databases": ["shop/x"]},
        ["databases: 'shop/x' is not a database name"],
    ),
    (
        "create-backup",
        {"kind": "logical", "databases": [f"db{n}" for n in range(257)]},
        ["databases lists 257 names: give at most 256"],
    ),
    (
        "create-backup",
        {"description": "x" * 501},
        ["description has 501 characters: give at most 500"],
    ),
    (
        "create-backup",
        {"application": "MySQL"},
        ["application='MySQL' is not an application name"],
    ),
    ("create-backup", {"location": "eu west"}, ["location='eu west' is not a location name"]),
    # restore
    (
        "restore",
        {"point-in-time": "2026-11-20"},
        ["point-in-time='2026-11-20' is a date, not a moment", "2026-11-20T00:00:00Z", "latest"],
    ),
    (
        "restore",
        {"point-in-time": "2026-11-20T07:15:00"},
        ["has no time zone", "2026-11-20T07:15:00Z", "+01:00"],
    ),
    ("restore", {"point-in-time": "soon"}, ["is not a time: use RFC 3339", "or latest"]),
    (
        "restore",
        {"backup-id": "../etc"},
        ["backup-id='../etc' is not a backup id", "list-backups"],
    ),
    ("restore", {"backup-id": BACKUP, "tables": ["orders"]}, ["'orders' is not database.table"]),
    ("restore", {"backup-id": BACKUP, "location": "A"}, ["location='A' is not a location name"]),
    # list-backups, list-jobs
    ("list-backups", {"limit": 0}, ["limit=0 is out of range: give 1 to 200", "offset="]),
    ("list-backups", {"offset": -1}, ["offset=-1 is out of range: give 0 or more"]),
    ("list-backups", {"application": "my_sql"}, ["application='my_sql' is not an application"]),
    ("list-jobs", {"limit": 0}, ["limit=0 is out of range: give 1 to 200"]),
    ("list-jobs", {"limit": 201}, ["limit=201 is out of range: give 1 to 200"]),
    ("list-jobs", {"offset": -5}, ["offset=-5 is out of range: give 0 or more"]),
    ("list-jobs", {"application": "-x"}, ["application='-x' is not an application name"]),
    # clear-history
    ("clear-history", {"application": "X"}, ["application='X' is not an application name"]),
    # preserve-backup
    ("preserve-backup", {"backup-id": "", "until": "2999-01-01"}, ["give backup-id=<id>"]),
    ("preserve-backup", {"backup-id": "a b", "until": "2999-01-01"}, ["is not a backup id"]),
    (
        "preserve-backup",
        {"backup-id": BACKUP, "until": "31/12/2999"},
        ["until='31/12/2999' is not a time"],
    ),
    # copy-backup
    ("copy-backup", {"backup-id": BACKUP, "to": "Region B"}, ["to='Region B' is not a location"]),
    ("copy-backup", {"backup-id": BACKUP, "from": "x.y"}, ["from='x.y' is not a location name"]),
    ("copy-backup", {"backup-id": "*"}, ["backup-id='*' is not a backup id"]),
    # delete-backup
    ("delete-backup", {"backup-id": "../x"}, ["backup-id='../x' is not a backup id"]),
    ("delete-backup", {"backup-id": BACKUP, "location": "-"}, ["location='-' is not a location"]),
]


@pytest.mark.parametrize(("action", "given", "words"), CASES)
def test_a_bad_parameter_fails_saying_what_to_give(
    s3: FakeS3, action: str, given: dict[str, Any], words: list[str]
):
    _with_backup(s3)
    _, st = base()
    message = fail_message(action, st, **given)
    for word in words:
        assert word in message
    assert "^" not in message, "a raw pattern is no help to an admin"
    assert "Traceback" not in message


def test_latest_in_any_case_is_latest(s3: FakeS3):
    _with_backup(s3)
    db, st = base()
    results, out = run_action("restore", st, **{"point-in-time": "LATEST"})
    assert jobs_of(out, db)[0]["point-in-time"] == "latest"
    assert results["point-in-time"] == "latest"


def test_a_time_with_an_offset_is_sent_in_utc(s3: FakeS3):
    _with_backup(s3)
    db, st = base()
    moment = NOW - timedelta(hours=2)
    given = moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    results, out = run_action("restore", st, **{"point-in-time": given})
    utc = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert jobs_of(out, db)[0]["point-in-time"] == utc
    assert results["point-in-time"] == utc


# -- actions.yaml: Juju checks what it can before the charm runs ------------------------------


def _schema(action: str) -> dict[str, Any]:
    spec = ACTIONS[action]
    schema = {"type": "object", "properties": spec.get("params", {})}
    for key in ("required", "additionalProperties"):
        if key in spec:
            schema[key] = spec[key]
    return schema


@pytest.mark.parametrize(
    ("action", "given"),
    [
        ("create-backup", {"kind": "differential"}),
        ("create-backup", {"description": "x" * 501}),
        ("create-backup", {"databases": [f"db{n}" for n in range(257)]}),
        ("create-backup", {"tables": ["shop.orders", "shop.orders"]}),
        ("create-backup", {"application": "MySQL"}),
        ("create-backup", {"colour": "blue"}),
        ("restore", {"point-in-time": "x" * 100}),
        ("restore", {"backup-id": "../etc"}),
        ("list-jobs", {"limit": 0}),
        ("list-jobs", {"limit": 201}),
        ("list-jobs", {"offset": -1}),
        ("list-backups", {"limit": 0}),
        ("preserve-backup", {}),
        ("preserve-backup", {"backup-id": BACKUP, "cancel": "yes"}),
        ("copy-backup", {"backup-id": BACKUP, "to": "Region B"}),
        ("delete-backup", {"backup-id": BACKUP, "location": "x" * 200}),
    ],
)
def test_juju_refuses_what_the_schema_can_tell(action: str, given: dict[str, Any]):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(given, _schema(action))


def test_every_parameter_is_typed_and_bounded():
    for action, spec in ACTIONS.items():
        assert spec.get("additionalProperties") is False, action
        for name, param in (spec.get("params") or {}).items():
            where = f"{action} {name}"
            assert param.get("type") in ("string", "integer", "boolean", "array"), where
            if param["type"] == "string":
                assert "enum" in param or "maxLength" in param, where
            if param["type"] == "integer":
                assert "minimum" in param, where
                assert "maximum" in param or name == "offset", where
            if param["type"] == "array":
                assert param.get("maxItems"), where
                assert param.get("uniqueItems") is True, where
                assert param["items"].get("maxLength"), where


def test_the_typed_parameters_match_actions_yaml():
    """Each action's model has exactly the parameters actions.yaml declares."""
    assert set(params_mod.MODELS) == set(ACTIONS)
    for action, model in params_mod.MODELS.items():
        declared = set(ACTIONS[action].get("params") or {})
        fields = {
            (field.alias or name).replace("_", "-") for name, field in model.model_fields.items()
        }
        assert fields == declared, action


def test_a_huge_bad_value_is_quoted_short(s3: FakeS3):
    """The failure message is one `action-fail` argument: it never echoes the whole value."""
    _, st = base()
    message = fail_message("create-backup", st, application="A" * 200_000)
    assert message.startswith("application has 200000 characters: give at most 128")
    assert "AAA... is longer than any valid value" in message
    assert len(message) < 1000
