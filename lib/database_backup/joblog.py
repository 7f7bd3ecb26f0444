"""Job log lines: one stable logfmt line per job start, end and error (for Loki alerts).

The format is a contract (docs/how-to/monitor-with-cos.md); fields always in this order::

    database-backup-job event=start|end|error job-id=<id>
      job-type=backup|restore|drill|copy|retention
      kind=full|incremental|logical|pitr|- cluster=<cluster-id> outcome=running|success|error
      [duration-seconds=<n>] [message="<escaped, at most 300 characters>"]

A value is bare when it is made of safe characters, else double-quoted with backslashes,
double quotes and newlines escaped, so a line never spans two lines. The message never
carries a secret: the values the caller knows (`spec_secrets` collects them from an
engine spec) and anything written as `password=...`, `secret-key: ...`, `token=...` are
replaced by `***` before the message is cut to its bound. `emit` logs the line and
appends it to a log file under /var/log (rotated once past 10 MiB), where the COS
collectors (grafana-agent, opentelemetry-collector) pick up every `/var/log/**/*log` file
for Loki. No `ops`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

logger = logging.getLogger(__name__)

PREFIX = "database-backup-job"
EVENTS = ("start", "end", "error")
JOB_TYPES = ("backup", "restore", "drill", "copy", "retention")
#: kinds of work that are their own job type (the backup-manager's runs), kind `-`
OWN_TYPES = ("copy", "retention")
KINDS = ("full", "incremental", "logical", "pitr", "-")
OUTCOMES = ("running", "success", "error")
MAX_MESSAGE = 300
MAX_VALUE = 200
#: a job log file past this size is rotated once (`<name>.1`)
MAX_FILE_BYTES = 10 * 2**20
#: where the provider library's workers append their lines (a charm may give its own path)
DEFAULT_PATH = Path("/var/log/database-backup/jobs.log")
#: spec keys whose values are secrets, at any depth of an engine spec (and of the
#: manager's copy and retention specs, whose locations spell them with underscores)
SECRET_KEYS = frozenset(
    {"access-key", "secret-key", "password", "encryption-key", "access_key", "secret_key"}
)
REDACTED = "***"

_BARE = re.compile(r"^[A-Za-z0-9._:/@+-]+$")
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b([\w-]*(?:secret|password|passwd|token|credential|access[-_]?key)[\w-]*)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;)]+)"
)
_URL_USERINFO = re.compile(r"(://)[^/\s:@]+:[^/\s@]+@")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class JobLine:
    """One job event; `render` gives its line.

    Raises:
        ValueError: a field is outside the contract (the message says what is allowed).
    """

    event: str
    job_id: str
    job_type: str
    kind: str
    cluster: str
    outcome: str
    duration_seconds: float | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("event", EVENTS),
            ("job_type", JOB_TYPES),
            ("kind", KINDS),
            ("outcome", OUTCOMES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                label = name.replace("_", "-")
                raise ValueError(f"job log {label} {value!r} is not one of {', '.join(allowed)}")

    @classmethod
    def start(cls, job_id: str, job_type: str, kind: str, cluster: str) -> JobLine:
        """The job started (or, on the manager, was requested)."""
        return cls("start", job_id, job_type, kind, cluster, "running")

    @classmethod
    def end(
        cls,
        job_id: str,
        job_type: str,
        kind: str,
        cluster: str,
        *,
        duration_seconds: float | None = None,
    ) -> JobLine:
        """The job ended well."""
        return cls("end", job_id, job_type, kind, cluster, "success", duration_seconds)

    @classmethod
    def error(
        cls,
        job_id: str,
        job_type: str,
        kind: str,
        cluster: str,
        *,
        duration_seconds: float | None = None,
        message: str | None = None,
    ) -> JobLine:
        """The job failed (or was refused); `message` says why."""
        return cls("error", job_id, job_type, kind, cluster, "error", duration_seconds, message)

    def render(self, secrets: Iterable[str] = ()) -> str:
        """The line (no newline); `secrets` are hidden from the message."""
        parts = [
            PREFIX,
            f"event={self.event}",
            f"job-id={_value(self.job_id)}",
            f"job-type={self.job_type}",
            f"kind={self.kind}",
            f"cluster={_value(self.cluster)}",
            f"outcome={self.outcome}",
        ]
        if self.duration_seconds is not None:
            parts.append(f"duration-seconds={_duration(self.duration_seconds)}")
        if self.message is not None:
            parts.append(f"message={_quoted(clean_message(self.message, secrets))}")
        return " ".join(parts)


def clean_message(message: str, secrets: Iterable[str] = ()) -> str:
    """`message` without secrets or control characters, at most MAX_MESSAGE characters."""
    text = message
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _ASSIGNED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)
    text = _CONTROL.sub("", text).strip()
    return text[:MAX_MESSAGE]


def spec_secrets(spec: Mapping[str, object]) -> list[str]:
    """Every secret value in an engine spec document (`SECRET_KEYS`, at any depth)."""
    found: list[str] = []
    todo: list[object] = [spec]
    while todo:
        item = todo.pop()
        if isinstance(item, Mapping):
            for key, value in cast("Mapping[str, object]", item).items():
                if key in SECRET_KEYS and isinstance(value, str):
                    found.append(value)
                else:
                    todo.append(value)
        elif isinstance(item, list):
            todo.extend(cast("list[object]", item))
    return [value for value in found if value]


def describe(request: Mapping[str, object] | None, work_kind: str = "") -> tuple[str, str]:
    """(job-type, kind) of a job from its wire request (and the runner's kind of work).

    A drill is a backup request with `verify-backup-id`; a restore or drill to a point in
    time has kind `pitr`; a backup's kind is its `backup-kind` (else from `work_kind`,
    e.g. "full backup"); the manager's copies and retention runs (`work_kind` "copy",
    "retention") are their own type, kind `-`.
    """
    if work_kind in OWN_TYPES:
        return work_kind, "-"
    request = request or {}
    point_in_time = bool(request.get("point-in-time"))
    if request.get("verify-backup-id") or "drill" in work_kind:
        return "drill", "pitr" if point_in_time else "-"
    job_type = request.get("job-type")
    if job_type == "restore" or (job_type is None and work_kind == "restore"):
        return "restore", "pitr" if point_in_time else "-"
    kind = request.get("backup-kind")
    if kind not in KINDS:
        kind = work_kind.split(" ")[0] if work_kind.split(" ")[0] in KINDS else "full"
    return "backup", str(kind)


def emit(line: JobLine, path: Path | None, secrets: Iterable[str] = ()) -> str:
    """Log the line (error level for an error) and append it to `path`; return it.

    A file that cannot be written is logged as a warning: a job never fails for its log.
    """
    text = line.render(list(secrets))
    logger.log(logging.ERROR if line.event == "error" else logging.INFO, "%s", text)
    if path is not None:
        try:
            append_line(path, text)
        except OSError as exc:
            logger.warning("cannot append the job log line to %s: %s", path, exc)
    return text


def append_line(path: Path, text: str, *, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Append one line to `path` (0640; its directory made 0755 if missing).

    A file past `max_bytes` is first renamed `<name>.1` (replacing the previous one), so
    the log stays bounded; the rotated name does not end in `log`, so collectors that
    tail `*log` do not ship it twice. Writers lock the file while they check and rotate.

    Raises:
        OSError: the directory or file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    data = (text + "\n").encode("utf-8", "replace")
    for _ in range(2):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_current(fd, path) and os.fstat(fd).st_size < max_bytes:
                os.write(fd, data)
                return
            if _is_current(fd, path):
                os.replace(path, path.with_name(path.name + ".1"))
        finally:
            os.close(fd)
    raise OSError(f"{path} was rotated under this writer twice")


def _is_current(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (another writer may have rotated it)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _value(text: str) -> str:
    text = _CONTROL.sub("", text)[:MAX_VALUE]
    return text if _BARE.match(text) else _quoted(text)


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _duration(seconds: float) -> str:
    rounded = round(max(0.0, float(seconds)), 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


class JobLog:
    """The lines of one job as the worker that runs it sees them (start, then end or error)."""

    def __init__(self, base: JobLine, path: Path | None, secrets: Iterable[str] = ()) -> None:
        self.base = base
        self.path = path
        self.secrets = list(secrets)
        self._started: float | None = None

    @classmethod
    def for_job(
        cls,
        job_id: str,
        work_kind: str,
        labels: Mapping[str, object],
        spec: Mapping[str, object] | None,
    ) -> JobLog | None:
        """From a job's record (its `request`, `cluster-id` and `job-log` labels) and spec.

        `job-log` is the file the lines go to; null asks for no line at all; a record
        without it (started by an older revision) gets `DEFAULT_PATH`. The spec gives the
        secrets to hide (and the cluster, when the labels lack it).
        """
        if "job-log" in labels and not labels["job-log"]:
            return None
        request = labels.get("request")
        wire = cast("Mapping[str, object]", request) if isinstance(request, Mapping) else None
        job_type, kind = describe(wire, work_kind)
        cluster = labels.get("cluster-id") or (spec or {}).get("cluster-id") or "-"
        path = labels.get("job-log")
        return cls(
            JobLine.start(job_id, job_type, kind, str(cluster)),
            Path(path) if isinstance(path, str) and path else DEFAULT_PATH,
            spec_secrets(spec or {}),
        )

    def started(self) -> str:
        """Emit the start line; the duration of the end line counts from now."""
        self._started = time.monotonic()
        return emit(self.base, self.path, self.secrets)

    def ended(self, success: bool, message: str | None = None) -> str:
        """Emit the end line (success) or the error line (with `message`)."""
        duration = None if self._started is None else time.monotonic() - self._started
        base = self.base
        fields = (base.job_id, base.job_type, base.kind, base.cluster)
        if success:
            line = JobLine.end(*fields, duration_seconds=duration)
        else:
            line = JobLine.error(*fields, duration_seconds=duration, message=message or "failed")
        return emit(line, self.path, self.secrets)
