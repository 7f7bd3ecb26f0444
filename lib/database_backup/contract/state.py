"""The state file: an engine command's progress and how it ended, and its result."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Final, Literal, cast

from .values import JSON, count_value, drop_none, now_text, text_value

RUNNING: Final = "running"
SUCCESS: Final = "success"
ERROR: Final = "error"
Status = Literal["running", "success", "error"]
_FLAVOURS = ("mysql", "mariadb")
_COMPRESSIONS = ("none", "zstd")


def _status(value: JSON | None) -> Status:
    if value == SUCCESS:
        return SUCCESS
    if value == ERROR:
        return ERROR
    return RUNNING


@dataclasses.dataclass(frozen=True)
class EngineResult:
    """What a successful backup or restore reports in the state's `result` (typed view).

    Unknown or malformed values read as None, so an older or newer engine never breaks the
    reader.
    """

    backup_id: str | None = None
    stored_size: int | None = None
    sha256: str | None = None
    compression: str | None = None
    encrypted: bool | None = None
    flavour: str | None = None
    server_version: str | None = None
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid_set: str | None = None

    @classmethod
    def from_json(cls, data: object) -> EngineResult:
        """The typed view of a `result` object (an empty one for anything else)."""
        if not isinstance(data, dict):
            return cls()
        data = cast("dict[str, JSON]", data)  # what json.loads (or the engine) made
        compression = data.get("compression")
        flavour = data.get("flavour")
        encrypted = data.get("encrypted")
        return cls(
            backup_id=text_value(data.get("backup-id")),
            stored_size=count_value(data.get("stored-size")),
            sha256=text_value(data.get("sha256")),
            compression=compression if compression in _COMPRESSIONS else None,
            encrypted=encrypted if isinstance(encrypted, bool) else None,
            flavour=flavour if flavour in _FLAVOURS else None,
            server_version=text_value(data.get("server-version")),
            binlog_file=text_value(data.get("binlog-file")),
            binlog_position=count_value(data.get("binlog-position")),
            gtid_set=text_value(data.get("gtid-set")),
        )


@dataclasses.dataclass(frozen=True)
class EngineState:
    """The state file: an engine command's progress, and how it ended.

    `data_changed` is set when a restore or recovery failed: False when the server's data
    is what it was before, True when it was touched (None: not known, or not a restore).
    """

    command: str | None = None
    status: Status = RUNNING
    phase: str | None = None
    bytes_done: int | None = None
    bytes_estimated: int | None = None
    pid: int | None = None
    started_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    backup_id: str | None = None
    result: object = None
    data_changed: bool | None = None

    @classmethod
    def starting(cls, command: str) -> EngineState:
        """The first state of a command started now by this process."""
        now = now_text()
        return cls(
            command=command,
            phase="starting",
            bytes_done=0,
            bytes_estimated=0,
            pid=os.getpid(),
            started_at=now,
            updated_at=now,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> EngineState:
        """Read a state document leniently (a missing or malformed value reads as None).

        Times are kept as written (`normalise_time` gives the contract's format).
        """
        phase = data.get("phase")
        pid = data.get("pid")
        changed = data.get("data-changed")
        return cls(
            command=text_value(data.get("command")),
            status=_status(data.get("status")),
            phase=phase if isinstance(phase, str) else None,
            bytes_done=count_value(data.get("bytes-done")),
            bytes_estimated=count_value(data.get("bytes-estimated")),
            pid=count_value(pid),
            started_at=text_value(data.get("started-at")),
            updated_at=text_value(data.get("updated-at")),
            finished_at=text_value(data.get("finished-at")),
            message=text_value(data.get("message")),
            backup_id=text_value(data.get("backup-id")),
            result=data.get("result"),
            data_changed=changed if isinstance(changed, bool) else None,
        )

    def to_json(self) -> dict[str, object]:
        """The document the engine writes (unset optional values are left out)."""
        values: dict[str, JSON] = {
            "command": self.command,
            "status": self.status,
            "phase": self.phase,
            "bytes-done": self.bytes_done,
            "bytes-estimated": self.bytes_estimated,
            "pid": self.pid,
            "started-at": self.started_at,
            "updated-at": self.updated_at,
            "finished-at": self.finished_at,
            "message": self.message,
            "backup-id": self.backup_id,
            "data-changed": self.data_changed,
        }
        document: dict[str, object] = {**drop_none(values)}
        if self.result is not None:
            document["result"] = self.result
        return document

    def typed_result(self) -> EngineResult:
        """The typed view of `result` (empty unless it is an object)."""
        return EngineResult.from_json(self.result)
