"""The catalog's JSON documents: how they are written and read back into typed values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import cast

from .errors import MetadataError


def dump_document(document: Mapping[str, object]) -> bytes:
    """The stored form of a catalog document: indented JSON and a newline."""
    return (json.dumps(document, indent=2) + "\n").encode()


def load_json(raw: bytes, what: str) -> object:
    """The JSON value in ``raw``.

    Raises:
        MetadataError: ``raw`` is not JSON (``what`` names the document).
    """
    try:
        value: object = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MetadataError(f"{what} is not valid JSON") from None
    return value


def as_list(value: object) -> list[object] | None:
    """``value`` as a JSON array, or None if it is not one."""
    if not isinstance(value, list):
        return None
    return cast("list[object]", value)


def as_object(value: object) -> dict[str, object] | None:
    """``value`` as a JSON object (its keys are strings), or None if it is not one."""
    if not isinstance(value, dict):
        return None
    return cast("dict[str, object]", value)
