"""What a drill checks on the restored scratch server.

1. `CHECK TABLE` on every base table of the user schemas (in batches): a table with an
   `error` row, or whose last `status` is not `OK`, fails the drill; a table whose engine
   cannot be checked is counted as skipped.
2. The table sums recorded at backup time (`table-sums` in `backup.json`, see
   `mysql.tablesums`) against the same tables measured now: any difference fails the
   drill, naming the tables. Not done after a point-in-time replay (the data is then at
   that time, not at the backup's point) or when the backup recorded none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from database_backup.catalog import BackupMetadata

from ..connection import ConnectionSpec, run_query
from ..flavour import Flavour
from ..tablesums import TableSums, compare, compared_tables, measure_scratch

SYSTEM_SCHEMAS = ("mysql", "sys", "performance_schema", "information_schema")
#: tables per CHECK TABLE statement
BATCH = 50
#: the last status rows that mean the table is sound
_SOUND = ("OK", "Table is already up to date")
#: seconds for one CHECK TABLE statement (a big table is read whole)
CHECK_TIMEOUT = 6 * 3600.0
#: most problems named in the reason
MAX_PROBLEMS = 10


@dataclass
class TableCheck:
    """The outcome of `CHECK TABLE` over the scratch server's tables."""

    checked: int = 0
    problems: list[str] = field(default_factory=list[str])
    unsupported: list[str] = field(default_factory=list[str])


@dataclass(frozen=True)
class SumsCheck:
    """The outcome of comparing the recorded table sums with the restored data."""

    compared: int
    skipped: int
    mismatches: list[str]
    note: str | None = None


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def user_tables(conn: ConnectionSpec, flavour: Flavour, work: Path) -> list[tuple[str, str]]:
    """(schema, table) of every base table outside the system schemas, in order."""
    excluded = ", ".join(f"'{name}'" for name in SYSTEM_SCHEMAS)
    rows = run_query(
        conn,
        "SELECT table_schema, table_name FROM information_schema.tables "  # noqa: S608 - constants
        f"WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ({excluded}) "
        "ORDER BY table_schema, table_name;",
        client=flavour.client_tool,
        workdir=work,
        timeout=600,
    )
    return [(row[0], row[1]) for row in rows if len(row) >= 2]


def interpret(rows: Sequence[tuple[str, ...]], report: TableCheck) -> None:
    """Add the rows of `CHECK TABLE` (table, op, type, text) to `report`."""
    verdicts: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if len(row) >= 4:
            verdicts.setdefault(row[0], []).append((row[2].lower(), row[3]))
    for table, lines in verdicts.items():
        errors = [text for kind, text in lines if kind == "error"]
        statuses = [text for kind, text in lines if kind == "status"]
        notes = [text for kind, text in lines if kind == "note"]
        if errors:
            report.problems.append(f"{table}: {errors[0]}")
        elif statuses and statuses[-1] not in _SOUND:
            report.problems.append(f"{table}: {statuses[-1]}")
        elif not statuses and any("doesn't support check" in text for text in notes):
            report.unsupported.append(table)
            continue
        report.checked += 1


def check_tables(
    conn: ConnectionSpec, flavour: Flavour, work: Path, tables: Sequence[tuple[str, str]]
) -> TableCheck:
    """Run `CHECK TABLE` over `tables`, `BATCH` at a time."""
    report = TableCheck()
    for start in range(0, len(tables), BATCH):
        names = ", ".join(f"{_ident(db)}.{_ident(t)}" for db, t in tables[start : start + BATCH])
        rows = run_query(
            conn, f"CHECK TABLE {names};", client=flavour.client_tool, workdir=work,
            timeout=CHECK_TIMEOUT,
        )  # fmt: skip
        interpret(rows, report)
    return report


def problem_text(problems: Sequence[str]) -> str:
    """The first problems, joined, with how many more there are."""
    shown = "; ".join(problems[:MAX_PROBLEMS])
    rest = len(problems) - MAX_PROBLEMS
    return shown + (f"; and {rest} more" if rest > 0 else "")


def recorded_sums(meta: BackupMetadata) -> TableSums | None:
    """The table sums `backup.json` recorded (None: none, or unreadable)."""
    if meta.table_sums is None:
        return None
    try:
        return TableSums.from_dict(meta.table_sums)
    except ValueError:
        return None


def check_sums(
    conn: ConnectionSpec,
    flavour: Flavour,
    work: Path,
    meta: BackupMetadata,
    *,
    budget_seconds: float,
) -> SumsCheck:
    """Measure the recorded tables on the scratch server and compare."""
    recorded = recorded_sums(meta)
    if recorded is None:
        return SumsCheck(0, 0, [], note="the backup recorded no table sums: not compared")
    if recorded.error is not None and not recorded.tables:
        note = f"the backup's table sums were not recorded ({recorded.error}): not compared"
        return SumsCheck(0, len(recorded.skipped) + recorded.unlisted, [], note=note)
    measured = measure_scratch(
        conn, budget_seconds=budget_seconds, tables=set(recorded.tables),
        client=flavour.client_tool, workdir=work,
    )  # fmt: skip
    compared = compared_tables(recorded, measured)
    skipped = len(recorded.tables) - len(compared) + len(recorded.skipped) + recorded.unlisted
    return SumsCheck(len(compared), skipped, compare(recorded, measured))
