"""Load the interface's JSON schemas and validate relation data with them.

The JSON files in `interfaces/database_backup/v0/schemas/` are the single source of truth;
this module only loads them (they ship inside the package as `schemas/`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sized
from importlib import resources
from typing import Any, Protocol, cast

import jsonschema
import jsonschema.exceptions
from jsonschema.protocols import Validator

from .errors import DataValidationError


class _Relevance(Protocol):
    """The part of `jsonschema.exceptions` used here, with the types its stub leaves out."""

    def best_match(
        self, errors: Iterable[jsonschema.ValidationError]
    ) -> jsonschema.ValidationError:
        """The error that best explains why `errors` (at least one) happened."""
        ...


_RELEVANCE: _Relevance = jsonschema.exceptions

REQUIRER = "requirer"
PROVIDER = "provider"


@functools.cache
def load_schema(side: str) -> dict[str, Any]:
    """Return the JSON schema of one side (`requirer` or `provider`)."""
    if side not in (REQUIRER, PROVIDER):
        raise ValueError(f"unknown side {side!r}")
    folder = resources.files("database_backup.interface").joinpath("schemas")
    text = folder.joinpath(f"{side}.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def _validator(side: str, definition: str | None) -> Validator:
    schema = load_schema(side)
    if definition is not None:
        if definition not in schema["$defs"]:
            raise ValueError(f"{side} schema has no definition {definition!r}")
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


MAX_DETAIL = 120


def _clip(text: str, limit: int = MAX_DETAIL) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_BOUNDS = {"maxItems": "items", "maxLength": "characters", "maxProperties": "entries"}


def _over_bound(error: jsonschema.ValidationError) -> str | None:
    """`300 items, at most 256` for an error of a max* rule (the value itself may be huge)."""
    unit = _BOUNDS.get(str(error.validator))
    instance: object = error.instance
    if unit is None or not isinstance(instance, (str, list, dict)):
        return None
    return f"{len(cast('Sized', instance))} {unit}, at most {error.validator_value}"


def describe_error(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into a short sentence naming the offending field.

    Offending values are clipped: they come from the remote side and may be huge.
    """
    path = _clip(".".join(str(part) for part in error.absolute_path), 80)
    where = f"'{path}'" if path else "the object"
    if error.validator == "enum":
        values = error.validator_value
        if isinstance(values, list):
            allowed = ", ".join(str(v) for v in cast("list[object]", values))
        else:
            allowed = str(values)
        return f"{where}: {_clip(repr(error.instance))} is not one of: {allowed}"
    bound = _over_bound(error)
    if bound is not None:
        return f"{where}: {bound}"
    if error.validator == "not" and isinstance(error.schema, dict):
        # "X should not be valid under {...}" reads badly: a `not` rule says why in words.
        description = cast("dict[str, object]", error.schema).get("description")
        if isinstance(description, str):
            return f"{where}: {description}"
    return f"{where}: {_clip(error.message, 300)}"


def errors_of(instance: Any, side: str, definition: str | None = None) -> list[str]:
    """Return every validation error of `instance` as readable sentences (empty if valid)."""
    validator = _validator(side, definition)
    errors = list(validator.iter_errors(instance))
    if not errors:
        return []
    first = _RELEVANCE.best_match(errors)
    rest = [describe_error(e) for e in errors if e is not first]
    return [describe_error(first), *rest]


def validate(instance: Any, side: str, definition: str | None = None) -> None:
    """Raise DataValidationError if `instance` does not match the schema (or one definition)."""
    problems = errors_of(instance, side, definition)
    if problems:
        raise DataValidationError("; ".join(problems[:3]))
