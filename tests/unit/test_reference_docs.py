"""Reference docs cannot drift: the generated tables, and the interface README's field tables.

The committed reference tables are exactly what scripts/gen_reference.py makes of the yaml;
the field tables of the interface README list exactly the schemas' keys, with their
requiredness, enum values and ranges.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import gen_reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["actions.md", "config.md"])
def test_committed_reference_matches_the_yaml(name: str):
    path = ROOT / "docs" / "reference" / name
    expected = gen_reference.generated()[path]

    committed = path.read_text() if path.is_file() else ""

    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            f"committed {name}",
            f"generated {name}",
        )
    )
    assert not diff, f"run `python scripts/gen_reference.py` and commit:\n{diff}"


@pytest.mark.parametrize("charm", gen_reference.CHARMS, ids=lambda c: c.name)
def test_every_action_parameter_and_option_is_documented(charm: gen_reference.CharmSource):
    actions = yaml.safe_load((charm.directory / "actions.yaml").read_text()) or {}
    options = (yaml.safe_load((charm.directory / "config.yaml").read_text()) or {})["options"]

    actions_doc = gen_reference.render_actions()
    config_doc = gen_reference.render_config()

    for action, spec in actions.items():
        assert f"### {charm.name}: `{action}`" in actions_doc
        section = actions_doc.split(f"### {charm.name}: `{action}`", 1)[1].split("### ", 1)[0]
        for param in spec.get("params") or {}:
            assert f"| `{param}` |" in section, (action, param)
    charm_config = config_doc.split(f"## {charm.name}", 1)[1].split("\n## ", 1)[0]
    for option in options:
        assert f"| `{option}` |" in charm_config, option


def test_a_changed_description_makes_the_docs_stale(monkeypatch: pytest.MonkeyPatch):
    original = gen_reference._load

    def edited(path: Path) -> dict:
        data = original(path)
        if path == ROOT / "config.yaml":
            data["options"]["backup-schedule"]["description"] = "something else"
        return data

    monkeypatch.setattr(gen_reference, "_load", edited)

    assert gen_reference.stale() == [ROOT / "docs" / "reference" / "config.md"]


# -- the interface README's field tables against the JSON schemas ------------------------------

SPEC = ROOT / "interfaces" / "database_backup" / "v0"
SCHEMAS = {
    side: json.loads((SPEC / "schemas" / f"{side}.json").read_text())
    for side in ("requirer", "provider")
}
#: keys of the published draft interface: the README's extension tables leave them out
DRAFT_JOB_KEYS = {"job-id", "job-type", "job-config", "storage-interface", "storage-config"}
DRAFT_JOB_KEYS |= {"artefact-path"}
DRAFT_STATUS_KEYS = {"job-id", "status", "message", "artefact-path"} | DRAFT_JOB_KEYS
#: (text just before the table, schema side, schema location, keys the table leaves out)
FIELD_TABLES = [
    ("### Requirer: application databag", "requirer", "", set()),
    ("### Provider: unit databag", "provider", "", set()),
    ("Job request keys (items of the requirer's `jobs`)", "requirer", "job", DRAFT_JOB_KEYS),
    ("`storage-config` keys (in job requests", "requirer", "storage-config", set()),
    (
        "Status keys (items of a provider unit's `jobs`)",
        "provider",
        "job-status",
        DRAFT_STATUS_KEYS,
    ),
]


def table_after(readme: str, anchor: str) -> list[dict[str, str]]:
    """The rows (header -> cell) of the first Markdown table after `anchor`."""
    if anchor not in readme:
        raise AssertionError(f"the interface README has no {anchor!r} any more: update this test")
    lines = readme.split(anchor, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row, strict=False)) for row in body]


def schema_object(side: str, location: str) -> dict[str, Any]:
    """The schema object a table documents: the databag (``""``) or a `$defs` entry."""
    schema = SCHEMAS[side]
    return schema if not location else schema["$defs"][location]


def table_problems(
    readme: str, anchor: str, side: str, location: str, left_out: set[str]
) -> list[str]:
    """What differs between one README table and the schema object it documents."""
    rows = table_after(readme, anchor)
    obj = schema_object(side, location)
    properties = obj.get("properties", {})
    required = set(obj.get("required", []))
    documented: dict[str, dict[str, str]] = {}
    for row in rows:
        for key in re.findall(r"`([^`]+)`", row["key"]):
            documented[key] = row
    where = f"{SPEC.name}/README.md, table after {anchor!r} ({side} {location or 'databag'})"
    problems = [
        f"{where}: `{key}` is in the schema but not in the table"
        for key in sorted(set(properties) - left_out - set(documented))
    ]
    problems += [
        f"{where}: `{key}` is in the table but not in the schema"
        for key in sorted(set(documented) - set(properties))
    ]
    for key, row in sorted(documented.items()):
        prop = properties.get(key, {})
        text = " ".join(row.values())
        says_required = re.search(r"\brequired\b(?! with)", text) is not None
        if says_required != (key in required):
            wanted = "required" if key in required else "optional"
            problems.append(
                f"{where}: `{key}` is {wanted} in the schema; the table says otherwise"
            )
        if "as in the request" not in text:  # else the request's table says it
            problems += [
                f"{where}: `{key}` may be `{value}`; the table does not say so"
                for value in prop.get("enum", [])
                if f"`{value}`" not in text
            ]
        bounds = f"{prop.get('minimum')} to {prop.get('maximum')}"
        if "minimum" in prop and "maximum" in prop and bounds not in text:
            problems.append(
                f"{where}: `{key}` is {bounds} in the schema; the table does not say so"
            )
    return problems


def field_table_problems(readme: str) -> list[str]:
    """Every difference between the interface README's field tables and the schemas."""
    return [
        problem
        for anchor, side, location, left_out in FIELD_TABLES
        for problem in table_problems(readme, anchor, side, location, left_out)
    ]


def test_the_interface_readme_field_tables_match_the_schemas():
    problems = field_table_problems((SPEC / "README.md").read_text())
    assert not problems, "\n".join(problems)


def test_a_drifted_field_table_is_caught():
    readme = (SPEC / "README.md").read_text()
    missing = "".join(
        line for line in readme.splitlines(keepends=True) if not line.startswith("| `sha256` |")
    )
    assert missing != readme
    assert any("`sha256` is in the schema" in p for p in field_table_problems(missing))
    extra = readme.replace(
        "| `unit` | the unit that runs the job |\n",
        "| `unit` | the unit that runs the job |\n| `timeline` | a GTID set |\n",
    )
    assert any("`timeline` is in the table" in p for p in field_table_problems(extra))
    kinds = readme.replace("`incremental` or `logical`", "or `incremental`")
    assert any("may be `logical`" in p for p in field_table_problems(kinds))
    optional = readme.replace(
        "| `bucket` | bucket name (draft, required) |", "| `bucket` | name |"
    )
    assert any("`bucket` is required" in p for p in field_table_problems(optional))
