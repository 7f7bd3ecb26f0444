"""The interface README cannot drift from the schemas or the library.

Every property the JSON schemas define must be named in the README, the README's databag
examples must validate against the schemas, and the keys the library writes outside the
schemas (`request-error`, the provider's peer keys) must be documented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from database_backup.interface import provider, requirer

SPEC = Path(__file__).parents[3] / "interfaces" / "database_backup" / "v0"
README = (SPEC / "README.md").read_text()
SCHEMAS = {
    side: json.loads((SPEC / "schemas" / f"{side}.json").read_text())
    for side in ("requirer", "provider")
}
EXAMPLE_MARKERS = {
    "requirer": "# requirer application databag",
    "provider": "# provider unit databag",
}
ENCODED = {
    "requirer": {"jobs": "jobs", "log-shipping": "log-shipping"},
    "provider": {"jobs": "jobs", "log-shipping": "log-shipping-status"},
}


def properties(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every (location, property name) defined anywhere in a schema."""
    if isinstance(node, list):
        for child in node:
            yield from properties(child, where)
        return
    if not isinstance(node, dict):
        return
    for name, child in node.get("properties", {}).items():
        yield where, name
        yield from properties(child, f"{where}.{name}")
    for definition, child in node.get("$defs", {}).items():
        yield from properties(child, f"{where}#{definition}")
    for key, child in node.items():
        if key not in ("properties", "$defs"):
            yield from properties(child, where)


ALL_PROPERTIES = sorted(
    {
        (f"{side}{where}", name)
        for side, schema in SCHEMAS.items()
        for where, name in properties(schema, "")
    }
)


def test_the_property_walk_sees_the_whole_schemas() -> None:
    names = {name for _, name in ALL_PROPERTIES}
    # top level, job request, status and nested objects: a broken walk would find far fewer
    assert {"jobs", "cluster-id", "log-shipping", "job-id", "backup-kind", "status"} <= names
    assert {"bytes-done", "credentials-secret-id", "last-shipped-file"} <= names
    assert len(names) >= 50


@pytest.mark.parametrize(("where", "name"), ALL_PROPERTIES)
def test_every_schema_property_is_documented(where: str, name: str) -> None:
    assert f"`{name}`" in README, f"{where}: property {name!r} is not mentioned in README.md"


@pytest.mark.parametrize(
    "key",
    [
        requirer.REQUEST_ERROR_KEY,
        requirer.LOG_SHIPPING_KEY,
        requirer.CLUSTER_ID_KEY,
        provider.ASSIGNMENTS_KEY,
        provider.UNIT_STATES_KEY,
    ],
)
def test_keys_the_library_writes_are_documented(key: str) -> None:
    assert f"`{key}`" in README


def test_the_readme_links_the_schemas() -> None:
    for side in SCHEMAS:
        assert f"(schemas/{side}.json)" in README


def examples() -> list[tuple[str, str]]:
    blocks = re.findall(r"```yaml\n(.*?)```", README, flags=re.DOTALL)
    found = []
    for block in blocks:
        for side, marker in EXAMPLE_MARKERS.items():
            if block.startswith(marker):
                found.append((side, block))
    return found


def problems(side: str, instance: Any, definition: str | None = None) -> list[str]:
    schema = SCHEMAS[side]
    if definition:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(instance)]


def test_the_readme_has_examples_of_both_databags() -> None:
    sides = [side for side, _ in examples()]
    assert sides.count("requirer") >= 2  # one using the extensions, one draft-style
    assert sides.count("provider") >= 2


@pytest.mark.parametrize(("side", "block"), examples())
def test_readme_examples_validate(side: str, block: str) -> None:
    databag = yaml.safe_load(block)
    assert isinstance(databag, dict)
    assert all(isinstance(value, str) for value in databag.values()), "databag values are strings"
    assert problems(side, databag) == []
    for key, definition in ENCODED[side].items():
        if key in databag:
            assert problems(side, json.loads(databag[key]), definition) == [], key
