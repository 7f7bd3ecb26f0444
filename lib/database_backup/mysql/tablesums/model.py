"""What ``table-sums`` in ``backup.json`` holds, and how recorded and measured sums compare.

The document (kebab-case keys)::

    {"measured-at": "2026-11-29T04:00:00.123Z", "method": "checksum-table-extended",
     "server-version": "10.11.19-MariaDB-0+deb12u1",
     "tables": {"shop.orders": {"rows": 2500, "checksum": 3735928559}},
     "skipped": {"shop.events": "non-transactional (Aria): changed after the backup's ..."},
     "unlisted": 0, "error": null}

``tables`` are keyed ``database.table``; ``checksum`` is ``CHECKSUM TABLE ... EXTENDED``
(null when the server could not compute one). ``skipped`` says why each table listed but
not measured was left out; ``unlisted`` counts the tables beyond the listing cap (not
named, not measured); ``error`` is set when recording failed as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from database_backup import timefmt
from database_backup.catalog.documents import as_object

METHOD = "checksum-table-extended"
#: mismatches `compare` lists by name; the rest are counted in one last line
MAX_MISMATCHES = 20
#: bounds of a document read back (a writer never goes near them)
_MAX_ENTRIES = 100_000
_MAX_REASON = 500


@dataclass(frozen=True)
class TableSum:
    """One table's measure: its row count and ``CHECKSUM TABLE`` value (None: no checksum)."""

    rows: int
    checksum: int | None


@dataclass
class TableSums:
    """Per-table row counts and checksums of one server state, and what was left out.

    Attributes:
        tables: measured tables, keyed ``database.table``.
        skipped: tables listed but not measured, with the reason.
        measured_at: when the measurement was taken (aware).
        method: how checksums were computed (``METHOD``).
        server_version: ``VERSION()`` of the measured server; checksums are compared
            only between the same major.minor version (the algorithm may change).
        unlisted: tables beyond the listing cap, neither measured nor named.
        error: why recording failed as a whole (then nothing is measured).
    """

    tables: dict[str, TableSum] = field(default_factory=dict[str, TableSum])
    skipped: dict[str, str] = field(default_factory=dict[str, str])
    measured_at: datetime = field(default_factory=timefmt.utc_now)
    method: str = METHOD
    server_version: str | None = None
    unlisted: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        return {
            "measured-at": timefmt.format_time(self.measured_at, exact=True),
            "method": self.method,
            "server-version": self.server_version,
            "tables": {
                name: {"rows": item.rows, "checksum": item.checksum}
                for name, item in sorted(self.tables.items())
            },
            "skipped": dict(sorted(self.skipped.items())),
            "unlisted": self.unlisted,
            "error": self.error,
        }

    def summary(self) -> str:
        """One line for a job log: how many tables were measured and skipped, and why."""
        if self.error is not None:
            return f"table sums not recorded: {self.error}"
        line = f"table sums: {len(self.tables)} tables measured, {len(self.skipped)} skipped"
        if self.skipped:
            name, reason = min(self.skipped.items())
            line += f" (first: {name}: {reason})"
        if self.unlisted:
            line += f", {self.unlisted} more tables not listed"
        return line

    @classmethod
    def from_dict(cls, obj: object) -> TableSums:
        """Read a ``table-sums`` document.

        Raises:
            ValueError: ``obj`` is not such a document (the message names the bad part).
        """
        document = as_object(obj)
        if document is None:
            raise ValueError("table-sums must be a JSON object")
        measured_at = document.get("measured-at")
        if not isinstance(measured_at, str):
            raise ValueError("table-sums: measured-at must be an RFC 3339 time string")
        try:
            moment = timefmt.parse_time(measured_at)
        except ValueError as exc:
            raise ValueError(f"table-sums: measured-at: {exc}") from None
        method = document.get("method", METHOD)
        if not isinstance(method, str):
            raise ValueError("table-sums: method must be a string")
        return cls(
            tables=_read_tables(document.get("tables", {})),
            skipped=_read_skipped(document.get("skipped", {})),
            measured_at=moment,
            method=method,
            server_version=_optional_string(document, "server-version"),
            unlisted=_count(document.get("unlisted", 0), "unlisted"),
            error=_optional_string(document, "error"),
        )


def _read_tables(value: object) -> dict[str, TableSum]:
    entries = as_object(value)
    if entries is None or len(entries) > _MAX_ENTRIES:
        raise ValueError(f"table-sums: tables must be an object of at most {_MAX_ENTRIES}")
    tables: dict[str, TableSum] = {}
    for name, raw in entries.items():
        entry = as_object(raw)
        if entry is None or not _is_table_name(name):
            raise ValueError(f"table-sums: tables[{name!r}] must be an object under db.table")
        checksum = entry.get("checksum")
        tables[name] = TableSum(
            rows=_count(entry.get("rows"), f"tables[{name!r}].rows"),
            checksum=None if checksum is None else _count(checksum, f"{name}.checksum"),
        )
    return tables


def _read_skipped(value: object) -> dict[str, str]:
    entries = as_object(value)
    if entries is None or len(entries) > _MAX_ENTRIES:
        raise ValueError(f"table-sums: skipped must be an object of at most {_MAX_ENTRIES}")
    skipped: dict[str, str] = {}
    for name, reason in entries.items():
        if not _is_table_name(name) or not isinstance(reason, str):
            raise ValueError(f"table-sums: skipped[{name!r}] must be a reason (a string)")
        skipped[name] = reason[:_MAX_REASON]
    return skipped


def _is_table_name(name: str) -> bool:
    database, dot, table = name.partition(".")
    return bool(database and dot and table)


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"table-sums: {what} must be a non-negative integer")
    return value


def _optional_string(document: Mapping[str, object], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"table-sums: {key} must be a string or null")
    return value


def _release(version: str | None) -> tuple[str, ...] | None:
    """``("10", "11")`` of ``10.11.19-MariaDB``; None when unknown."""
    if not version:
        return None
    parts = version.removeprefix("5.5.5-").split(".")
    return tuple(parts[:2]) if len(parts) >= 2 else None


def compared_tables(recorded: TableSums, measured: TableSums) -> list[str]:
    """The tables both recorded and measured (what `compare` checks), sorted."""
    return sorted(set(recorded.tables) & set(measured.tables))


def compare(recorded: TableSums, measured: TableSums) -> list[str]:
    """Readable mismatches between the sums recorded at backup time and measured now.

    A table recorded but neither measured nor skipped on the measured server is missing
    there (a mismatch); tables skipped on either side are not compared. Checksums are
    compared only when both servers are of the same major.minor version (rows always).
    At most `MAX_MISMATCHES` lines name a table; one more line counts the rest.
    """
    same_release = _release(recorded.server_version) == _release(measured.server_version)
    mismatches: list[str] = []
    for name in sorted(recorded.tables):
        wanted = recorded.tables[name]
        found = measured.tables.get(name)
        if found is None:
            if name not in measured.skipped and not measured.unlisted:
                mismatches.append(f"{name}: {wanted.rows} rows recorded, the table is missing")
            continue
        if found.rows != wanted.rows:
            mismatches.append(f"{name}: {wanted.rows} rows recorded, {found.rows} found")
        elif (
            same_release
            and wanted.checksum is not None
            and found.checksum is not None
            and found.checksum != wanted.checksum
        ):
            mismatches.append(
                f"{name}: checksum {wanted.checksum} recorded, {found.checksum} found "
                f"(same {found.rows} rows, different contents)"
            )
    return _bounded(mismatches)


def _bounded(lines: Iterable[str]) -> list[str]:
    items = list(lines)
    if len(items) <= MAX_MISMATCHES:
        return items
    rest = len(items) - MAX_MISMATCHES
    return [*items[:MAX_MISMATCHES], f"... and {rest} more mismatching tables"]
