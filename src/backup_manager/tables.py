"""Readable tables for action results (`juju run` shows them as text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A fixed-width text table; `columns` are (header, key) pairs. Empty cells show `-`."""
    if not rows:
        return "(none)"
    headers = [header for header, _ in columns]
    body = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [len(h) for h in headers]
    for line in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, line, strict=True)]
    out = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    out.extend(_line(line, widths) for line in body)
    return "\n".join(out)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cell(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in cast("Sequence[object]", value))
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
