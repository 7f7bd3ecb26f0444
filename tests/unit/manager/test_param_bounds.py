"""Every text and list a user gives an action has a bound, and going over it is refused.

The message names the parameter, the bound and what to give instead; nothing is cut short
silently and no job is sent (`fail_message` checks that). Juju's own check of actions.yaml
refuses the same values first, so both charms' action schemas are bounded too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .fakes import FakeS3, add_backup
from .helpers import cluster
from .test_actions import base, fail_message

ROOT = Path(__file__).resolve().parents[3]
BACKUP = "20261121T010000Z-bbbb"
TABLE_130 = "s" * 64 + "." + "t" * 65

CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "create-backup",
        {"application": "a" * 129},
        "application has 129 characters: give at most 128",
    ),
    ("create-backup", {"location": "l" * 129}, "location has 129 characters: give at most 128"),
    (
        "create-backup",
        {"kind": "logical", "tables": [TABLE_130]},
        "tables: a name has 130 characters: give at most 129",
    ),
    (
        "create-backup",
        {"kind": "logical", "tables": [f"shop.t{n}" for n in range(257)]},
        "tables lists 257 names: give at most 256",
    ),
    ("restore", {"backup-id": "b" * 129}, "backup-id has 129 characters: give at most 128"),
    (
        "restore",
        {"point-in-time": "2026-11-22T07:15:00" + "0" * 30 + "Z"},
        "point-in-time has 50 characters: give at most 40",
    ),
    (
        "restore",
        {"backup-id": BACKUP, "source-cluster": "m" * 200 + "/" + "a" * 100},
        "source-cluster has 301 characters: give at most 257",
    ),
    ("list-backups", {"cluster": "m" * 300}, "cluster has 300 characters: give at most 257"),
    (
        "preserve-backup",
        {"backup-id": BACKUP, "until": "2999-01-01" + " " * 10 + "x" * 30},
        "until has 50 characters: give at most 40",
    ),
    (
        "copy-backup",
        {"backup-id": BACKUP, "to": "t" * 200},
        "to has 200 characters: give at most 128",
    ),
]


@pytest.mark.parametrize(("action", "given", "words"), CASES)
def test_a_value_over_its_bound_is_refused_naming_the_bound(
    s3: FakeS3, action: str, given: dict[str, Any], words: str
):
    add_backup(s3.bucket("bucket-a"), cluster(), BACKUP, hours_ago=24)
    _, st = base()
    message = fail_message(action, st, **given)
    assert words in message
    assert len(message) < 600


def _actions(path: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / path).read_text())


@pytest.mark.parametrize("path", ["actions.yaml", "mysql/actions.yaml"])
def test_every_action_parameter_of_both_charms_is_bounded(path: str):
    for action, spec in _actions(path).items():
        assert spec.get("additionalProperties") is False, f"{path} {action}"
        for name, param in (spec.get("params") or {}).items():
            where = f"{path} {action} {name}"
            if param["type"] == "string":
                assert "enum" in param or "maxLength" in param, where
            if param["type"] == "integer":
                assert "minimum" in param, where
            if param["type"] == "array":
                assert param.get("maxItems"), where
                assert param["items"].get("maxLength"), where


def test_juju_refuses_a_job_id_over_its_bound_for_cancel_job():
    spec = _actions("mysql/actions.yaml")["cancel-job"]
    schema = {"type": "object", "properties": spec["params"], "additionalProperties": False}
    jsonschema.validate({"job-id": "backup-20261122T071500Z-1a2b3c"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"job-id": "j" * 129}, schema)
