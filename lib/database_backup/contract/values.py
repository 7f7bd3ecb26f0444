"""JSON values of the contract's documents: the type, lenient readers, the time format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from database_backup.timefmt import format_time, parse_time, utc_now

#: a JSON value as `json.loads` returns it
JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"


class SpecError(Exception):
    """The spec file or environment is unusable; the message says how to fix it."""


def now_text() -> str:
    """The current time in the contract's format (`database_backup.timefmt`)."""
    return format_time(utc_now())


def normalise_time(value: object) -> str | None:
    """A timestamp read from a file, in the contract's format (None if not a time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return format_time(parse_time(value))
    except ValueError:
        return None


def json_object(data: Mapping[str, JSON], name: str, *, required: bool) -> dict[str, JSON]:
    """The object `data[name]` (empty when absent and not required).

    Raises:
        SpecError: not an object.
    """
    value = data.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"the spec needs a {name!r} object")
    return dict(value)


def optional_text(data: Mapping[str, JSON], name: str) -> str | None:
    """`data[name]` if it is a non-empty string, else None."""
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def text_value(value: JSON | None) -> str | None:
    """`value` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def count_value(value: JSON | None) -> int | None:
    """`value` if it is a non-negative integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def drop_none(values: dict[str, JSON]) -> dict[str, JSON]:
    """`values` without the None ones."""
    return {name: value for name, value in values.items() if value is not None}
