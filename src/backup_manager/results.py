"""Action results that stay bounded, whatever the history or catalog size.

ops hands each result value to `action-set` as one `key=value` argument, and Linux refuses
a single argument over MAX_ARG_STRLEN (128 KiB): the action would crash. So listings come
in pages counted from the newest (`limit`, `offset`), a page is cut further until every
value fits BUDGET, a `more` value says what was left out and how to see it, and
`bounded` is the last guard for any action's result. No `ops` here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

BUDGET = 96 * 1024
MAX_TEXT = 2000
MAX_ITEMS = 256
_CUT = (
    " ... (cut: the value was {size} bytes, over the {budget} KiB an action result value may be)"
)

Row = Mapping[str, Any]


def value_size(key: str, value: Any) -> int:
    """Bytes of `key=value` as `action-set` receives it."""
    return len(f"{key}={value}".encode())


def too_big(values: Mapping[str, Any], budget: int = BUDGET) -> int:
    """How many bytes the largest value is over `budget` (0 when all fit)."""
    return max(0, *(value_size(k, v) - budget for k, v in values.items()))


def clip_row(row: Row) -> dict[str, Any]:
    """The row with long texts and lists shortened (a provider message, a table list)."""
    clipped: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            value = value[: MAX_TEXT - 3] + "..."
        elif isinstance(value, list):
            items = cast("list[object]", value)
            if len(items) > MAX_ITEMS:
                value = [*items[:MAX_ITEMS], f"... and {len(items) - MAX_ITEMS} more"]
        clipped[key] = value
    return clipped


def page(
    rows: Sequence[Row],
    *,
    limit: int,
    offset: int,
    what: str,
    action: str,
    render: Callable[[list[dict[str, Any]]], dict[str, Any]],
    budget: int = BUDGET,
) -> dict[str, Any]:
    """One page of `rows` (oldest first): the newest `limit` after skipping `offset`.

    The page keeps the rows' order (newest last). When a rendered value would exceed
    `budget`, the page's oldest rows go first. The result has `count` (rows shown),
    `total`, the rendered values and, when some rows are not shown, `more`.
    """
    total = len(rows)
    end = max(0, total - offset)
    shown = [clip_row(row) for row in rows[max(0, end - limit) : end]]
    values = render(shown)
    cut = False
    while shown and (over := too_big(values, budget)):
        size = max(value_size(k, v) for k, v in values.items())
        drop = max(1, math.ceil(len(shown) * over / size))
        shown = shown[drop:]
        cut = True
        values = render(shown)
    result: dict[str, Any] = {"count": len(shown), "total": total, **values}
    note = _note(len(shown), total, limit, offset, what, action, cut, budget)
    if note:
        result["more"] = note
    return result


def _note(
    shown: int,
    total: int,
    limit: int,
    offset: int,
    what: str,
    action: str,
    cut: bool,
    budget: int,
) -> str:
    if shown == total:
        return ""
    if not shown:
        if offset >= total:
            return (
                f"offset={offset} is past the oldest of the {total} {what}: give an offset "
                f"below {total}"
            )
        return f"none of the {total} {what} fits in one result: see the storage directly"
    first, last = offset + 1, offset + shown
    parts = [f"showing {what} {first}-{last} of {total}, counted from the newest"]
    if cut:
        parts[0] += (
            f" (fewer than limit={limit}, so that each result value stays under "
            f"{budget // 1024} KiB)"
        )
    if last < total:
        parts.append(f"older ones: {action} offset={last} limit={limit}")
    if offset:
        parts.append(f"newer ones: {action} offset={max(0, offset - limit)}")
    return "; ".join(parts)


def bounded(values: Mapping[str, Any], budget: int = BUDGET) -> dict[str, Any]:
    """The last guard for any result: a value over `budget` is cut, and says so."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        size = value_size(key, value)
        if size > budget:
            marker = _CUT.format(size=size, budget=budget // 1024)
            text = f"{value}".encode()[: budget - len(key) - 1 - len(marker.encode()) - 16]
            value = text.decode(errors="ignore") + marker
        out[key] = value
    return out
