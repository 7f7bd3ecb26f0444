"""`list`: the cluster's backups, as an aligned table or as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from database_backup.catalog import BackupMetadata, IncompleteBackup
from database_backup.contract import JSON, EngineSpec

from . import options
from .factories import make_catalog
from .state import StateFile

_LIST_COLUMNS = (
    ("backup-id", "backup-id"),
    ("kind", "kind"),
    ("status", "status"),
    ("finished", "finished-at"),
    ("stored", "stored-size"),
    ("compression", "compression"),
    ("encrypted", "encrypted"),
)


def register(new_command: options.NewCommand) -> None:
    """Add the `list` command."""
    listing = new_command("list", "list backups")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--all", action="store_true", help="include incomplete backups")


def cmd_list(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """List the cluster's backups.

    The complete ones come from the cluster's index (one GET and a listing of the ids it
    does not know yet); `--all` lists every backup's own files, to show each incomplete
    one (failed or in progress) whatever the index knows.
    """
    catalog = make_catalog(spec)
    backups: list[BackupMetadata | IncompleteBackup]
    if args.all:
        backups = catalog.list_backups(include_incomplete=True)
    else:
        backups = catalog.read_index().entries()
    rows = [_list_row(item) for item in backups]
    state.succeed(None, rows)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(format_table(rows))


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The human-readable listing: one line per backup, aligned columns."""
    lines = [[title for title, _key in _LIST_COLUMNS]]
    for row in rows:
        cells: list[str] = []
        for _title, key in _LIST_COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else str(value))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(_LIST_COLUMNS))]
    out: list[str] = []
    for line in lines:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out)


def _list_row(item: BackupMetadata | IncompleteBackup) -> dict[str, JSON]:
    row: dict[str, JSON] = dict(item.to_dict())
    row.setdefault("status", item.status)
    return row
