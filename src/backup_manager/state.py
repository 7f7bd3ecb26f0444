"""The manager's state in the peer relation's application databag (leader writes)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any, cast

import ops

from . import history
from .history import Record

PEER = "manager-peers"
HISTORY_KEY = "history"
SLOT_KEY = "last-slot"
RETENTION_KEY = "last-retention"
COPIES_KEY = "copies"
SCHEDULE_KEY = "schedule"
STORAGE_PROBLEMS_KEY = "storage-problems"
ENCRYPTION_EXPORTED_KEY = "encryption-key-exported"


class PeerState:
    """Typed access to the peer app databag; writes need leadership and the relation."""

    def __init__(self, model: ops.Model) -> None:
        self._model = model
        self._relation = model.get_relation(PEER)

    @property
    def ready(self) -> bool:
        """True when the peer relation exists (it does from the first hooks on)."""
        return self._relation is not None

    def _get(self, key: str) -> str | None:
        if self._relation is None:
            return None
        return self._relation.data[self._model.app].get(key) or None

    def _set(self, key: str, value: str | None) -> None:
        if self._relation is None or not self._model.unit.is_leader():
            return
        data = self._relation.data[self._model.app]
        if value is None:
            data.pop(key, None)
        elif data.get(key) != value:
            data[key] = value

    # -- history ------------------------------------------------------------------------

    def history(self) -> list[Record]:
        """The job history, oldest first."""
        return history.load(self._get(HISTORY_KEY))

    def save_history(self, records: list[Record]) -> None:
        """Store the (bounded) history."""
        self._set(HISTORY_KEY, history.dump(records))

    # -- schedule and retention ---------------------------------------------------------

    @property
    def last_slot(self) -> datetime.datetime | None:
        """The slot of the last scheduled run (None until scheduling starts)."""
        value = self._get(SLOT_KEY)
        return datetime.datetime.fromisoformat(value) if value else None

    @last_slot.setter
    def last_slot(self, value: datetime.datetime | None) -> None:
        self._set(SLOT_KEY, value.isoformat() if value is not None else None)

    @property
    def schedule(self) -> str | None:
        """The schedule the slot was seeded for (`main|kind|full`)."""
        return self._get(SCHEDULE_KEY)

    @schedule.setter
    def schedule(self, value: str | None) -> None:
        self._set(SCHEDULE_KEY, value)

    @property
    def last_retention(self) -> str | None:
        """The UTC date (YYYY-MM-DD) of the last daily retention check."""
        return self._get(RETENTION_KEY)

    @last_retention.setter
    def last_retention(self, value: str) -> None:
        self._set(RETENTION_KEY, value)

    @property
    def storage_problems(self) -> dict[str, dict[str, str]]:
        """Location name -> {fingerprint, message} of the last failed storage check."""
        try:
            data = json.loads(self._get(STORAGE_PROBLEMS_KEY) or "{}")
        except json.JSONDecodeError:
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    @storage_problems.setter
    def storage_problems(self, problems: dict[str, dict[str, str]]) -> None:
        self._set(STORAGE_PROBLEMS_KEY, json.dumps(problems, sort_keys=True) if problems else None)

    # -- copies in flight ---------------------------------------------------------------

    def copies(self) -> dict[str, dict[str, Any]]:
        """Copy id -> where its outcome shows (unit, cluster id, location, backup id, start).

        No pid: whichever unit leads reads a copy's outcome from its local job or from
        the destination storage. Entries of older revisions (a pid) come back empty.
        """
        try:
            data = json.loads(self._get(COPIES_KEY) or "{}")
        except json.JSONDecodeError:
            return {}
        if not isinstance(data, dict):
            return {}
        entries = cast("dict[str, object]", data)
        return {
            str(k): dict(cast("dict[str, Any]", v)) if isinstance(v, dict) else {}
            for k, v in entries.items()
        }

    def save_copies(self, copies: Mapping[str, Mapping[str, Any]]) -> None:
        """Store the copies still running."""
        self._set(COPIES_KEY, json.dumps(copies, sort_keys=True) if copies else None)

    # -- encryption key -----------------------------------------------------------------

    @property
    def encryption_exported(self) -> str | None:
        """Fingerprint of the generated key the admin exported (never the key), or None."""
        return self._get(ENCRYPTION_EXPORTED_KEY)

    @encryption_exported.setter
    def encryption_exported(self, value: str | None) -> None:
        self._set(ENCRYPTION_EXPORTED_KEY, value)
