"""The fast check of `databases`/`tables` accepts exactly what the schema accepts."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import jsonschema
import pytest

from database_backup.interface import decode_requests, namelists, schemas

JOB = schemas.load_schema(schemas.REQUIRER)["$defs"]["job"]["properties"]
ALPHABET = string.ascii_letters + string.digits + "._/ -`é"


def _random_list(rng: random.Random, key: str) -> Any:
    shape = rng.random()
    if shape < 0.05:
        return "shop"  # not a list
    if shape < 0.1:
        return [1, "shop"]
    count = rng.choice([0, 1, 2, 5, 255, 256, 257])
    names: list[str] = []
    for _ in range(count):
        length = rng.choice([0, 1, 5, 63, 64, 65, 128, 129, 130])
        name = "".join(rng.choice(ALPHABET) for _ in range(length))
        if key == "tables" and rng.random() < 0.7:
            half = max(1, length // 2)
            name = name[:half].replace(".", "a") + "." + name[half:].replace(".", "b")
        names.append(name)
    if names and rng.random() < 0.1:
        names.append(names[0])  # a duplicate
    return names


@pytest.mark.parametrize("key", namelists.LISTS)
def test_the_fast_rule_agrees_with_jsonschema(key: str):
    rule = namelists.RULES[key]
    assert rule is not None, f"the {key} schema has a keyword the fast check does not know"
    validator = jsonschema.Draft202012Validator(JOB[key])
    rng = random.Random(14)  # noqa: S311 - reproducible test data
    for _ in range(400):
        value = _random_list(rng, key)
        assert rule.allows(value) == validator.is_valid(value), json.dumps(value)[:200]


def test_an_unknown_keyword_turns_the_fast_check_off():
    assert namelists.rule_of({**JOB["tables"], "minItems": 1}) is None
    items = {**JOB["tables"]["items"], "format": "x"}
    assert namelists.rule_of({**JOB["tables"], "items": items}) is None


def test_valid_lists_are_emptied_and_invalid_ones_left_for_the_schema():
    job: dict[str, Any] = {"databases": ["shop", "crm"], "tables": ["bad name"]}
    assert namelists.without_valid_lists(job) == {"databases": [], "tables": ["bad name"]}


def test_an_invalid_name_still_gets_the_schemas_message():
    job = {
        "job-id": "j1",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {"bucket": "backups"},
        "backup-kind": "logical",
        "tables": ["shop.orders", "orders"],
    }
    (problem,) = decode_requests(json.dumps([job])).problems
    assert "'tables.1': 'orders' does not match" in problem.message
