"""Databag schemas of `database_backup` v0 for pytest-interface-tester.

The JSON schemas beside this file (`schemas/requirer.json`, `schemas/provider.json`) are the
single source of truth. The pydantic models below define no fields of their own: they hand
the raw databag to those JSON schemas, then decode the JSON-encoded values (`jobs`,
`log-shipping`) and validate them against the matching `$defs` entry.

The one rule JSON Schema cannot express is also checked here: job ids are unique within a
`jobs` array.

The schemas are read when this module is imported, because the interface tester imports it
from a temporary clone that is deleted before the models are used.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, ConfigDict, model_validator

_SCHEMAS = Path(__file__).parent / "schemas"


def _load(name: str) -> dict[str, Any]:
    schema = json.loads((_SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


REQUIRER_JSON_SCHEMA = _load("requirer.json")
PROVIDER_JSON_SCHEMA = _load("provider.json")


def _problems(schema: Mapping[str, Any], instance: Any, definition: str | None) -> list[str]:
    """Every violation of `schema` (or one of its `$defs`) as `path: message`."""
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in validator.iter_errors(instance):
        path = ".".join(str(part) for part in error.absolute_path) or "<databag>"
        out.append(f"{path}: {error.message[:300]}")
    return out


def _duplicate_ids(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    ids = Counter(item.get("job-id") for item in items if isinstance(item, dict))
    return sorted(str(job_id) for job_id, count in ids.items() if count > 1)


class _JsonSchemaDatabag(BaseModel):
    """A databag validated by a JSON schema; every key is kept as an extra field."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    json_schema_document: ClassVar[dict[str, Any]]
    """The JSON schema of the whole databag."""
    encoded_values: ClassVar[dict[str, str]]
    """Databag key holding a JSON document -> the `$defs` entry its decoded value matches."""

    @model_validator(mode="before")
    @classmethod
    def _check_with_json_schema(cls, data: Any) -> Any:
        schema = cls.json_schema_document
        problems = _problems(schema, data, None)
        if isinstance(data, Mapping):
            for key, definition in cls.encoded_values.items():
                raw = data.get(key)
                if not isinstance(raw, str):
                    continue
                try:
                    decoded = json.loads(raw)
                except json.JSONDecodeError as exc:
                    problems.append(f"{key}: not valid JSON ({exc})")
                    continue
                problems += [f"{key}/{p}" for p in _problems(schema, decoded, definition)]
                if key == "jobs" and (duplicates := _duplicate_ids(decoded)):
                    problems.append(f"jobs: duplicate job ids {', '.join(duplicates)}")
        if problems:
            raise ValueError("; ".join(problems[:10]))
        return data


class RequirerAppDatabag(_JsonSchemaDatabag):
    """The requirer's application databag (`schemas/requirer.json`)."""

    json_schema_document = REQUIRER_JSON_SCHEMA
    encoded_values = {
        "jobs": "jobs",
        "log-shipping": "log-shipping",
        "tls-ca-chains": "tls-ca-chains",
    }


class ProviderUnitDatabag(_JsonSchemaDatabag):
    """A provider unit's databag (`schemas/provider.json`)."""

    json_schema_document = PROVIDER_JSON_SCHEMA
    encoded_values = {"jobs": "jobs", "log-shipping": "log-shipping-status"}


def _check_databag(model: type[_JsonSchemaDatabag], data: Any, side: str) -> Any:
    """Validate one side's databag (`app` or `unit`) of a `DataBagSchema` input."""
    bag = data.get(side) if isinstance(data, Mapping) else None
    model.model_validate(bag if bag is not None else {})
    return data


class RequirerSchema(DataBagSchema):
    """The requirer publishes its job requests in its application databag.

    The `app` databag must satisfy `schemas/requirer.json`; the unit databag carries nothing.
    (A validator rather than a narrowed `app` field, since `DataBagSchema.app` is typed
    `BaseModel | None` and pydantic fields are invariant.)
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _check_app(cls, data: Any) -> Any:
        return _check_databag(RequirerAppDatabag, data, "app")


class ProviderSchema(DataBagSchema):
    """Each provider unit publishes the statuses of the jobs it runs in its unit databag.

    The `unit` databag must satisfy `schemas/provider.json`; the app databag carries nothing.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _check_unit(cls, data: Any) -> Any:
        return _check_databag(ProviderUnitDatabag, data, "unit")
