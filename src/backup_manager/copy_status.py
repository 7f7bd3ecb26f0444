"""A copy's status object in the destination storage, readable by whichever unit leads next.

The copy worker keeps `<cluster-id>/backups/<new-backup-id>/copy.json` up to date beside
the copy: `running` with a heartbeat (`updated-at`) every `HEARTBEAT` seconds, then
`success` (size, message) or `error` (message). The leader that started a copy reads its
outcome from the local job; any other leader (after a leadership change mid-copy) judges
it from this object and the copy's `backup.json` (`judge`): never from a pid. No `ops`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any, cast

from database_backup.catalog import Catalog
from database_backup.storage import ObjectNotFoundError

from .catalogs import format_time, utc_now

STATUS_FILE = "copy.json"
#: seconds between two heartbeats of a running copy
HEARTBEAT = 30
#: a running copy without a heartbeat for this long has lost its worker
STALE_AFTER = 600
#: a copy with no trace at all in storage this long after its start never got going
NO_TRACE_AFTER = 900

RUNNING, SUCCESS, ERROR = "running", "success", "error"


def key(catalog: Catalog, backup_id: str) -> str:
    """The status object's key, beside the copy's artefacts."""
    return catalog.artefact_key(backup_id, STATUS_FILE)


def running(spec: Mapping[str, Any], *, phase: str, unit: str, **extra: Any) -> dict[str, Any]:
    """The document of a running copy (its heartbeat: `updated-at` is now)."""
    now = format_time(utc_now())
    return {
        "copy-id": spec["copy-id"],
        "source": f"{spec['source']['name']}:{spec['backup-id']}",
        "unit": unit,
        "status": RUNNING,
        "phase": phase,
        "updated-at": now,
        **extra,
    }


def write(catalog: Catalog, backup_id: str, document: Mapping[str, Any]) -> None:
    """Store the status document (raises the storage's errors)."""
    data = json.dumps(dict(document), sort_keys=True).encode()
    catalog.storage.put_bytes(key(catalog, backup_id), data)


def read(catalog: Catalog, backup_id: str) -> dict[str, Any] | None:
    """The status document, or None when there is none (or it is unreadable)."""
    try:
        raw = catalog.storage.get_bytes(key(catalog, backup_id))
    except ObjectNotFoundError:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return cast("dict[str, Any]", document) if isinstance(document, dict) else None


def age(text: object, now: datetime.datetime) -> float | None:
    """Seconds from the RFC 3339 time `text` to `now` (None if it is not a time)."""
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return (now - moment).total_seconds()


def judge(
    copy_id: str,
    document: Mapping[str, Any] | None,
    *,
    complete: bool,
    location: str,
    started_at: str,
    now: datetime.datetime | None = None,
) -> dict[str, Any] | None:
    """The copy's result as storage shows it, or None while it still runs.

    Args:
        copy_id: the copy.
        document: its status object (None: none in storage).
        complete: the copy's `backup.json` exists and says complete.
        location: the destination's name (for messages).
        started_at: when the copy was started (RFC 3339).
        now: the current time (tests).
    """
    now = now or utc_now()
    result: dict[str, Any] = {"copy-id": copy_id, "finished-at": format_time(now)}
    status = (document or {}).get("status")
    if document is not None and status in (SUCCESS, ERROR):
        for name in ("status", "message", "size", "finished-at"):
            if document.get(name) is not None:
                result[name] = document[name]
        return result
    if document is not None:
        silent = age(document.get("updated-at"), now)
        if silent is not None and silent < STALE_AFTER:
            return None
        return {
            **result,
            "status": ERROR,
            "message": (
                f"the copy's worker on {document.get('unit') or 'the unit that started it'} "
                f"stopped without a result: no sign of life since "
                f"{document.get('updated-at') or 'its start'} (phase "
                f"{document.get('phase') or '?'!r}); run copy-backup again"
            ),
        }
    if complete:  # the status object is gone but the copy is there and complete
        return {**result, "status": SUCCESS, "message": "copied (found complete in storage)"}
    since = age(started_at, now)
    if since is not None and since < NO_TRACE_AFTER:
        return None
    return {
        **result,
        "status": ERROR,
        "message": (
            f"the copy left no trace in location {location!r} within "
            f"{NO_TRACE_AFTER // 60} minutes of its start ({started_at or 'unknown'}): its "
            "worker did not start or could not write there; run copy-backup again"
        ),
    }
