"""Restore drills: prove a backup restorable in a scratch server beside the live one.

Usage::

    from database_backup.mysql.drill import DrillRequest, LiveServer, run_drill

    outcome = run_drill(catalog, LiveServer(conn, Path("/var/lib/mysql")),
                        DrillRequest(backup_id, scratch_root=Path("/var/lib/drills")),
                        key=key, progress=print)
    outcome.verification.to_dict()   # {"result": "pass", "checked-at": ..., ...}

Layout: `run` (the order of work), `scratch` (the scratch server and its directory),
`binary` (the live server's program), `space` (the disk pre-check), `checks`
(`CHECK TABLE` and the table sums), `verification` (the verdict), `errors`.
"""

from .errors import DrillCancelledError, DrillError, DrillFailedError, DrillRefusedError
from .run import DrillOutcome, DrillRequest, LiveServer, run_drill
from .verification import Verification

__all__ = [
    "DrillCancelledError",
    "DrillError",
    "DrillFailedError",
    "DrillOutcome",
    "DrillRefusedError",
    "DrillRequest",
    "LiveServer",
    "Verification",
    "run_drill",
]
