"""The state file a command keeps up to date (`database_backup.contract.EngineState`).

Written to a temporary file and renamed, so readers never see half of it; progress writes
are throttled to one a second, a change of phase or status is written at once.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from database_backup.contract import EngineState, Status, now_text
from database_backup.files import write_json_atomic
from database_backup.mysql import ProgressEvent


class StateFile:
    """The command's `EngineState`, replaced atomically on every (unthrottled) update."""

    def __init__(self, path: Path | None, command: str) -> None:
        self.path = path
        self.state = EngineState.starting(command)
        self._last_write = 0.0

    def update(
        self,
        *,
        force: bool = True,
        status: Status | None = None,
        phase: str | None = None,
        bytes_done: int | None = None,
        bytes_estimated: int | None = None,
        message: str | None = None,
        backup_id: str | None = None,
        result: object = None,
        finished: bool = False,
        data_changed: bool | None = None,
    ) -> None:
        """Set the given values (None leaves a value as it is) and write the file."""
        state = self.state
        changes: dict[str, object] = {
            "status": status,
            "phase": phase,
            "bytes_done": bytes_done,
            "bytes_estimated": bytes_estimated,
            "message": message,
            "backup_id": backup_id,
            "result": result,
            "data_changed": data_changed,
        }
        state = dataclasses.replace(
            state,
            **{name: value for name, value in changes.items() if value is not None},
            updated_at=now_text(),
        )
        if finished:
            state = dataclasses.replace(state, finished_at=state.updated_at)
        self.state = state
        now = time.monotonic()
        if force or now - self._last_write >= 1.0:
            self._last_write = now
            self.write()

    def write(self) -> None:
        """Write the state to a temporary file beside the target and rename it over."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.state.to_json(), default=str)

    def progress(self, event: ProgressEvent) -> None:
        """Progress callback for the engine (throttled to one write per second)."""
        self.update(
            force=event.phase != self.state.phase,
            phase=event.phase,
            bytes_done=event.bytes_done,
            bytes_estimated=event.bytes_estimated,
        )

    def succeed(self, message: str | None, result: object = None) -> None:
        """Record success (phase `done`) with the command's result."""
        self.update(status="success", phase="done", message=message, result=result)
