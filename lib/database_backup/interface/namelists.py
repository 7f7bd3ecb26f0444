"""A job's name lists (`databases`, `tables`) checked by the schema's own rules, fast.

jsonschema spends tens of microseconds on each item of an array (a nested validator per
item); at the bounds (32 jobs of 256 databases and 256 tables) that was most of a hook.
This module reads each list's rules from the requirer schema (`maxItems`, `uniqueItems`
and each name's `type`, `minLength`, `maxLength`, `pattern`) and checks a list in one pass.

A list that passes is valid under exactly those rules: a rule with a keyword this module
does not know is not used (the list is left to jsonschema), so the schema cannot gain a
constraint this check would skip. A list that fails is left to jsonschema too, so the
messages stay the schema's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, cast

from . import schemas

LISTS = ("databases", "tables")
_LIST_KEYWORDS = {"type", "items", "uniqueItems", "maxItems", "description"}
_NAME_KEYWORDS = {"type", "minLength", "maxLength", "pattern"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """What the schema asks of one list of names."""

    max_items: int | None
    unique: bool
    min_length: int
    max_length: int | None
    pattern: re.Pattern[str] | None

    def allows(self, value: object) -> bool:
        """True when `value` is a list of names the schema accepts."""
        if not isinstance(value, list):
            return False
        names = cast("list[object]", value)
        if self.max_items is not None and len(names) > self.max_items:
            return False
        for name in names:
            if not isinstance(name, str):
                return False
            if len(name) < self.min_length:
                return False
            if self.max_length is not None and len(name) > self.max_length:
                return False
            if self.pattern is not None and self.pattern.search(name) is None:
                return False
        return not self.unique or len(set(cast("list[str]", names))) == len(names)


def rule_of(schema: Mapping[str, Any]) -> Rule | None:
    """The rule of a list schema, or None when it uses a keyword this module does not know."""
    items = schema.get("items")
    if schema.get("type") != "array" or not isinstance(items, Mapping):
        return None
    names = cast("Mapping[str, Any]", items)
    if set(schema) - _LIST_KEYWORDS or set(names) - _NAME_KEYWORDS:
        return None
    if names.get("type") != "string":
        return None
    pattern = names.get("pattern")
    return Rule(
        max_items=schema.get("maxItems"),
        unique=bool(schema.get("uniqueItems", False)),
        min_length=int(names.get("minLength", 0)),
        max_length=names.get("maxLength"),
        pattern=re.compile(pattern) if isinstance(pattern, str) else None,
    )


_JOB = schemas.load_schema(schemas.REQUIRER)["$defs"]["job"]["properties"]
RULES: dict[str, Rule | None] = {key: rule_of(_JOB[key]) for key in LISTS}


def without_valid_lists(item: object) -> object:
    """`item` with each name list the schema accepts emptied: what is left for jsonschema.

    An emptied list stays present (rules about whether a key is given still see it).
    """
    if not isinstance(item, Mapping):
        return item
    job = cast("Mapping[str, Any]", item)
    emptied: dict[str, Any] = {}
    for key in LISTS:
        rule = RULES[key]
        if key in job and rule is not None and rule.allows(job[key]):
            emptied[key] = []
    return {**job, **emptied} if emptied else job
