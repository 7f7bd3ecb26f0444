"""Per-table row counts and checksums: recorded at backup time, compared by a drill.

Usage::

    from database_backup.mysql.tablesums import TableSums, compare, measure_scratch

    recorded = TableSums.from_dict(meta.table_sums)       # what backup.json recorded
    measured = measure_scratch(scratch_conn, budget_seconds=60, tables=recorded.tables)
    problems = compare(recorded, measured)              # [] when the data is the backup's

Backups call `attach` (`record_for_backup`) once their stream is complete (see `measure`). Layout:
`model` (the document, `compare`), `measure` (what is measured and skipped), `window`
(which tables the binlog says changed), `session` (one client session with deadlines).
"""

from .measure import Limits, attach, measure_scratch, record_for_backup
from .model import MAX_MISMATCHES, METHOD, TableSum, TableSums, compare, compared_tables

__all__ = [
    "MAX_MISMATCHES",
    "METHOD",
    "Limits",
    "TableSum",
    "TableSums",
    "attach",
    "compare",
    "compared_tables",
    "measure_scratch",
    "record_for_backup",
]
