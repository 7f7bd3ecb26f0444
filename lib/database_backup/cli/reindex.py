"""`reindex`: rebuild the cluster's catalog index from every backup's own files.

The index (``<cluster-id>/index.json``, `database_backup.catalog.index`) heals itself on
every read from a listing of the backup ids; what a listing cannot see (a hold or a drill
result whose index update a concurrent writer overwrote) is put right by this command,
which reads every backup's ``backup.json``, ``preserve.json`` and ``verification.json``.
"""

from __future__ import annotations

import argparse
import json

from database_backup.contract import EngineSpec

from . import options
from .factories import make_catalog
from .state import StateFile


def register(new_command: options.NewCommand) -> None:
    """Add the `reindex` command."""
    new_command("reindex", "rebuild the catalog index from the per-backup files")


def cmd_reindex(_args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Rebuild the index; print (and record) what it holds."""
    catalog = make_catalog(spec)
    view = catalog.reindex()
    result = {
        "cluster-id": catalog.cluster_id,
        "complete": len(view.complete),
        "incomplete": len(view.incomplete),
        "held": len(view.holds()),
        "drilled": len(view.verifications()),
    }
    message = (
        f"indexed {result['complete']} complete backups of {catalog.cluster_id} "
        f"({result['held']} held, {result['drilled']} drilled; "
        f"{result['incomplete']} incomplete, not indexed)"
    )
    state.succeed(message, result)
    print(json.dumps(result))
