"""Job directories on the unit: what a job is, its progress, its lock and its outcome.

One directory per job under the store's root (mode 0700)::

    <root>/<key>/job.json       what to run (CLI arguments, no secret) and how to report back
    <root>/<key>/spec.json      the engine's spec, secrets included (0600; removed at the end)
    <root>/<key>/state.json     progress and result, kept up to date by the engine's CLI
    <root>/<key>/worker.log     the worker's and the engine's output (never a secret)
    <root>/<key>/lock           held (flock) by the worker for as long as it runs
    <root>/<key>/worker.json    how the worker was started (a transient systemd unit: its name)
    <root>/<key>/finished.json  written once when the job ended, by the worker or the charm

The engine inherits the worker's lock, so "the lock is free but the job has not finished"
means every process of the job died: the job is then reported as failed (`mark_dead`).
A detached process gets the lock from the hook that starts it (taken before it exists);
a transient systemd unit cannot inherit it, so its worker takes the lock first thing, and
until then the job counts as alive while systemd says the unit runs (or, when systemctl
does not answer, for `STARTING_GRACE` seconds after the start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from database_backup.contract import (
    ERROR,
    RUNNING,
    SUCCESS,
    EngineResult,
    EngineState,
    now_text,
)
from database_backup.files import read_json
from database_backup.files import write_json_atomic as write_json
from database_backup.timefmt import parse_time, utc_now

from . import systemd

__all__ = [
    "ERROR",
    "RUNNING",
    "SUCCESS",
    "JobRecord",
    "JobStore",
    "LocalJob",
    "Outcome",
    "job_key",
    "now_text",
    "read_json",
    "write_json",
]

JOB_FILE = "job.json"
SPEC_FILE = "spec.json"
STATE_FILE = "state.json"
LOG_FILE = "worker.log"
LOCK_FILE = "lock"
FINISHED_FILE = "finished.json"
WORKER_FILE = "worker.json"
#: the engine a job runs by default (`python -m <engine> <command> --spec ... --state-file ...`)
DEFAULT_ENGINE = "database_backup.cli"
#: seconds a transient unit's worker may take to lock its job when systemctl cannot tell
STARTING_GRACE = 120.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def job_key(scope: str, job_id: str) -> str:
    """A directory name for a job in a scope (e.g. a relation id): safe and unique."""
    return _UNSAFE.sub("_", f"{scope}-{job_id}")[:200]


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """What a job is: written once by the charm when it starts the job (no secrets).

    Attributes:
        key: the job's directory name.
        job_id: the requirer's job id.
        scope: where the job came from (the relation id, as text).
        kind: the kind of work, for the locking policy (e.g. "restore", "full backup").
        command: the engine CLI's arguments (subcommand first), without --spec/--state-file.
        created_at: when the job was started (RFC 3339, UTC).
        notify: a command the worker runs when the job ended (e.g. `juju-exec ...`), or
            None (the charm's update-status picks the result up instead).
        notify_cwd: working directory for `notify`.
        labels: what the charm wants back when it reports the job (e.g. the request).
        engine: the Python module the worker runs the command with (a CLI that takes
            `--spec` and `--state-file` and keeps the state file as `database_backup.cli`).
    """

    key: str
    job_id: str
    scope: str
    kind: str
    command: tuple[str, ...]
    created_at: str = dataclasses.field(default_factory=now_text)
    notify: tuple[str, ...] | None = None
    notify_cwd: str | None = None
    labels: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any])
    engine: str = DEFAULT_ENGINE

    def __post_init__(self) -> None:
        if not _MODULE.match(self.engine):
            raise ValueError(f"engine {self.engine!r} is not a Python module name")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "job-id": self.job_id,
            "scope": self.scope,
            "kind": self.kind,
            "command": list(self.command),
            "created-at": self.created_at,
            "notify": list(self.notify) if self.notify is not None else None,
            "notify-cwd": self.notify_cwd,
            "labels": dict(self.labels),
            "engine": self.engine,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRecord:
        """Read the JSON form back."""
        notify = data.get("notify")
        return cls(
            key=str(data["key"]),
            job_id=str(data["job-id"]),
            scope=str(data["scope"]),
            kind=str(data["kind"]),
            command=tuple(str(part) for part in data.get("command", ())),
            created_at=str(data.get("created-at", "")),
            notify=tuple(str(part) for part in notify) if notify is not None else None,
            notify_cwd=data.get("notify-cwd"),
            labels=dict(data.get("labels") or {}),
            engine=str(data.get("engine") or DEFAULT_ENGINE),
        )


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A job's state as seen now: running (with progress) or finished.

    `status` is running, success or error; the rest comes from the engine's last state
    (`database_backup.contract.EngineState`): `result` on success, `data_changed` after a
    failed restore (False: the server's data is what it was before).
    """

    status: str
    phase: str | None = None
    message: str | None = None
    bytes_done: int | None = None
    bytes_estimated: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: Mapping[str, Any] | None = None
    data_changed: bool | None = None

    @property
    def finished(self) -> bool:
        """True once the job ended."""
        return self.status != RUNNING

    def engine_result(self) -> EngineResult:
        """The typed view of `result` (empty while running or after a failure)."""
        return EngineResult.from_json(self.result)


class LocalJob:
    """One job directory."""

    def __init__(self, directory: Path, record: JobRecord) -> None:
        self.dir = directory
        self.record = record

    def __repr__(self) -> str:
        return f"LocalJob({self.record.key!r}, kind={self.record.kind!r})"

    @property
    def spec_path(self) -> Path:
        """The 0600 spec file (exists while the job runs)."""
        return self.dir / SPEC_FILE

    @property
    def state_path(self) -> Path:
        """The engine's state file."""
        return self.dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        """The worker's log."""
        return self.dir / LOG_FILE

    @property
    def lock_path(self) -> Path:
        """The lock the worker holds."""
        return self.dir / LOCK_FILE

    def state(self) -> dict[str, Any]:
        """The engine's state document (empty before the engine wrote one)."""
        return read_json(self.state_path) or {}

    def engine_state(self) -> EngineState:
        """The engine's state, typed (every value None before the engine wrote one)."""
        return EngineState.from_json(self.state())

    def finished_record(self) -> dict[str, Any] | None:
        """What was recorded when the job ended, or None while it has not."""
        return read_json(self.dir / FINISHED_FILE)

    def is_locked(self) -> bool:
        """Whether some process of the job still holds its lock (i.e. still runs)."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return True
            raise
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def outcome(self) -> Outcome:
        """Running (lock held, or not started yet), or finished (success/error)."""
        state = self.engine_state()
        finished = self.finished_record()
        if finished is None:
            return _outcome(state, RUNNING, None)
        status = finished.get("status") or state.status
        if status not in (SUCCESS, ERROR):
            status = ERROR
        message = finished.get("message") if status == ERROR else None
        return _outcome(state, status, message or state.message, finished)

    def worker_record(self) -> dict[str, Any] | None:
        """How the worker was started, when it runs as a transient systemd unit."""
        return read_json(self.dir / WORKER_FILE)

    @property
    def systemd_unit(self) -> str | None:
        """The transient systemd unit running the worker, if it was started as one."""
        record = self.worker_record() or {}
        unit = record.get("unit")
        return unit if isinstance(unit, str) and unit else None

    def is_dead(self) -> bool:
        """Not finished, and nothing holds the lock any more: every process of it died.

        A transient unit's worker takes the lock itself once started: until then the job
        is alive while systemd runs the unit (or, without an answer from systemctl, for
        `STARTING_GRACE` seconds after the start).
        """
        if self.finished_record() is not None or self.is_locked():
            return False
        if self._starting():
            return False
        return self.finished_record() is None  # it may have ended in between

    def _starting(self) -> bool:
        unit = self.systemd_unit
        if unit is None:
            return False
        active = systemd.is_active(unit)
        if active is not None:
            return active
        started = str((self.worker_record() or {}).get("started-at") or "")
        try:
            since = parse_time(started)
        except ValueError:
            return False
        age = (utc_now() - since).total_seconds()
        return age < STARTING_GRACE

    def finish(self, status: str, message: str | None, **extra: Any) -> None:
        """Record the end of the job once (later calls keep the first record)."""
        path = self.dir / FINISHED_FILE
        if path.exists():
            return
        write_json(path, {"status": status, "message": message, "at": now_text(), **extra})
        self.remove_spec()

    def mark_dead(self, note: str = "") -> None:
        """Record that every process of the job died before it finished.

        `note` is appended to the message: what happens next, or what to do.
        """
        phase = self.engine_state().phase or "starting"
        message = (
            f"the job's worker stopped unexpectedly during phase {phase!r} (killed, or the "
            f"machine restarted); details in {self.log_path} on the unit"
        ) + (f"; {note}" if note else "")
        self.finish(ERROR, message, dead=True)

    def remove_spec(self) -> None:
        """Delete the spec file (it holds secrets)."""
        self.spec_path.unlink(missing_ok=True)


def _outcome(
    state: EngineState,
    status: str,
    message: str | None,
    finished: Mapping[str, Any] | None = None,
) -> Outcome:
    result: object = state.result if status == SUCCESS else None
    finished_at = state.finished_at or (finished or {}).get("at")
    return Outcome(
        status=status,
        phase=state.phase,
        message=message if status != RUNNING else state.message,
        bytes_done=state.bytes_done,
        bytes_estimated=state.bytes_estimated,
        started_at=state.started_at,
        finished_at=finished_at if status != RUNNING else None,
        result=cast("Mapping[str, Any]", result) if isinstance(result, Mapping) else None,
        data_changed=state.data_changed if status == ERROR else None,
    )


class JobStore:
    """The job directories under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create(self, record: JobRecord, spec: Mapping[str, Any]) -> LocalJob:
        """Make the job's directory: job.json and the 0600 spec file.

        Raises:
            FileExistsError: a job with this key exists already.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory = self.root / record.key
        directory.mkdir(mode=0o700)
        write_json(directory / SPEC_FILE, dict(spec), mode=0o600)
        write_json(directory / JOB_FILE, record.to_dict(), mode=0o600)
        (directory / LOCK_FILE).touch(mode=0o600)
        return LocalJob(directory, record)

    def get(self, key: str) -> LocalJob | None:
        """The job with directory name `key`, if any."""
        directory = self.root / key
        data = read_json(directory / JOB_FILE)
        if data is None:
            return None
        try:
            return LocalJob(directory, JobRecord.from_dict(data))
        except (KeyError, TypeError, ValueError):
            return None

    def jobs(self) -> list[LocalJob]:
        """Every job on the unit, oldest first."""
        if not self.root.is_dir():
            return []
        found = (self.get(path.name) for path in self.root.iterdir() if path.is_dir())
        return sorted((job for job in found if job), key=lambda j: j.record.created_at)

    def running(self) -> list[LocalJob]:
        """Jobs that have not finished (whether their worker is alive or not)."""
        return [job for job in self.jobs() if job.finished_record() is None]

    def prune(self, keep: int = 20) -> list[str]:
        """Delete the oldest finished job directories beyond `keep`; return their keys."""
        finished = [job for job in self.jobs() if job.finished_record() is not None]
        removed: list[str] = []
        for job in finished[: max(0, len(finished) - keep)]:
            shutil.rmtree(job.dir, ignore_errors=True)
            removed.append(job.record.key)
        return removed

    def remove(self, key: str) -> None:
        """Delete one job directory."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root / key)

    def __iter__(self) -> Iterator[LocalJob]:
        return iter(self.jobs())
