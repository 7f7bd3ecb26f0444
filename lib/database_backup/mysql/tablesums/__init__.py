"""Per-table row counts and checksums: recorded at backup time, compared by a drill.

Usage::

    from database_backup.mysql.tablesums import TableSums, compare, measure_scratch

    recorded = TableSums.from_dict(meta.table_sums)       # what backup.json recorded
    measured = measure_scratch(scratch_conn, budget_seconds=60, tables=recorded.tables)
    problems = compare(recorded, measured)              # [] when the data is the backup's

Backups measure them with `Beside`: in a snapshot taken as the stream starts, checked
against the backup's consistent point once it is known, and measured again after the
stream only where that check fails (`record_for_backup`; see `beside` and `measure`).
Layout: `model` (the document, `compare`), `beside` (beside the stream), `measure` (what
is measured and skipped), `reading` (one table: its checksum, and its row count from the
same scan), `window` (which tables the binlog says changed), `replication` (what a
replica applies that its binlog does not show: no sums then), `session` (one client
session with deadlines).
"""

from .beside import Beside
from .measure import Limits, measure_scratch, record_for_backup
from .model import MAX_MISMATCHES, METHOD, TableSum, TableSums, compare, compared_tables

__all__ = [
    "MAX_MISMATCHES",
    "METHOD",
    "Beside",
    "Limits",
    "TableSum",
    "TableSums",
    "compare",
    "compared_tables",
    "measure_scratch",
    "record_for_backup",
]
