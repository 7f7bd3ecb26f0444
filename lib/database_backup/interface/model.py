"""Typed views of the jobs and statuses that cross the `database_backup` relation.

Every object keeps the keys it does not know in `extra`, so data written by a newer peer
survives a read-modify-write by an older one. Wire names are kebab-case, as in the schemas.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any, TypedDict, cast

from database_backup import timefmt
from database_backup.timefmt import utc_now as utc_now  # re-exported: the library's clock


class JobType(str, enum.Enum):
    """What a job does."""

    BACKUP = "backup"
    RESTORE = "restore"


class JobState(str, enum.Enum):
    """The draft's status values (the only ones allowed on the wire)."""

    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


class BackupKind(str, enum.Enum):
    """Kind of backup (extension key `backup-kind`)."""

    FULL = "full"
    INCREMENTAL = "incremental"
    LOGICAL = "logical"


LATEST = "latest"


def format_time(moment: datetime.datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC (`2026-11-22T07:15:00Z`, `timefmt`)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps on the relation must be timezone-aware")
    return timefmt.format_time(moment)


def parse_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp with an offset (as the schemas require)."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """Where a job's artefacts live. Credentials travel by Juju secret id.

    `inline_access_key`/`inline_secret_key` exist only to read jobs from draft-style
    requirers that put keys in the databag; they are never written by this library's
    requirer, never echoed back by its provider and never shown in a repr.

    `tls_ca_chain_id` names the CA chain in the requirer's top-level `tls-ca-chains`
    (`codec.encode_bag` sets it, decoding resolves it into `tls_ca_chain`). With an id, the
    wire form carries the id only: the chain travels beside the jobs, once.
    """

    bucket: str
    endpoint: str | None = None
    region: str | None = None
    path: str | None = None
    uri_style: str | None = None
    tls_ca_chain: str | None = dataclasses.field(default=None, repr=False)
    tls_ca_chain_id: str | None = None
    credentials_secret_id: str | None = None
    inline_access_key: str | None = dataclasses.field(default=None, repr=False)
    inline_secret_key: str | None = dataclasses.field(default=None, repr=False)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any], repr=False)

    _WIRE = (
        ("bucket", "bucket"),
        ("endpoint", "endpoint"),
        ("region", "region"),
        ("path", "path"),
        ("uri_style", "uri-style"),
        ("tls_ca_chain", "tls-ca-chain"),
        ("tls_ca_chain_id", "tls-ca-chain-id"),
        ("credentials_secret_id", "credentials-secret-id"),
        ("inline_access_key", "access-key"),
        ("inline_secret_key", "secret-key"),
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StorageConfig:
        """Build from the decoded `storage-config` object (already schema-validated)."""
        known = {wire for _, wire in cls._WIRE}
        values = {attr: data.get(wire) for attr, wire in cls._WIRE if attr != "bucket"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(bucket=str(data["bucket"]), **values, extra=extra)

    def to_dict(self, *, include_inline_keys: bool = False) -> dict[str, Any]:
        """Wire form; inline keys only when explicitly asked for (never by our code paths)."""
        out: dict[str, Any] = dict(self.extra)
        for attr, wire in self._WIRE:
            if wire in ("access-key", "secret-key") and not include_inline_keys:
                continue
            if wire == "tls-ca-chain" and self.tls_ca_chain_id is not None:
                continue
            value = getattr(self, attr)
            if value is not None:
                out[wire] = value
        return out

    @property
    def has_inline_keys(self) -> bool:
        """True when a draft-style requirer put the keys in the databag."""
        return bool(self.inline_access_key or self.inline_secret_key)


# (attribute, wire key) of the optional extension fields of a job request.
_REQUEST_OPTIONAL = (
    ("artefact_path", "artefact-path"),
    ("backup_kind", "backup-kind"),
    ("parent_backup_id", "parent-backup-id"),
    ("databases", "databases"),
    ("tables", "tables"),
    ("backup_id", "backup-id"),
    ("point_in_time", "point-in-time"),
    ("encryption_secret_id", "encryption-secret-id"),
    ("compression_level", "compression-level"),
    ("description", "description"),
    ("requested_at", "requested-at"),
    ("verify_backup_id", "verify-backup-id"),
)
_REQUEST_REQUIRED = ("job-id", "job-type", "job-config", "storage-interface", "storage-config")


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """One job as the requirer asks for it (an item of the requirer's `jobs` array)."""

    job_id: str
    job_type: JobType
    storage: StorageConfig
    compression: bool = True
    storage_interface: str = "s3"
    artefact_path: str | None = None
    backup_kind: BackupKind | None = None
    parent_backup_id: str | None = None
    databases: tuple[str, ...] | None = None
    tables: tuple[str, ...] | None = None
    backup_id: str | None = None
    point_in_time: str | None = None
    encryption_secret_id: str | None = None
    compression_level: int | None = None
    description: str | None = None
    requested_at: str | None = None
    verify_backup_id: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any], repr=False)

    @property
    def is_drill(self) -> bool:
        """True for a restore drill: a `backup` job naming the backup to verify."""
        return self.job_type is JobType.BACKUP and self.verify_backup_id is not None

    @property
    def kind(self) -> BackupKind:
        """The backup kind, `full` when the requirer did not say (draft requirers)."""
        return self.backup_kind or BackupKind.FULL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRequest:
        """Build from one decoded, schema-validated job object."""
        values: dict[str, Any] = {attr: data.get(wire) for attr, wire in _REQUEST_OPTIONAL}
        if values["backup_kind"] is not None:
            values["backup_kind"] = BackupKind(values["backup_kind"])
        for attr in ("databases", "tables"):
            if values[attr] is not None:
                values[attr] = tuple(values[attr])
        known = set(_REQUEST_REQUIRED) | {wire for _, wire in _REQUEST_OPTIONAL}
        return cls(
            job_id=data["job-id"],
            job_type=JobType(data["job-type"]),
            storage=StorageConfig.from_dict(data["storage-config"]),
            compression=bool(data["job-config"].get("compression", False)),
            storage_interface=data["storage-interface"],
            extra={k: v for k, v in data.items() if k not in known},
            **values,
        )

    def to_dict(self, *, include_inline_keys: bool = False) -> dict[str, Any]:
        """Wire form of the request (validated by the caller that writes it)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "job-id": self.job_id,
                "job-type": self.job_type.value,
                "job-config": {"compression": self.compression},
                "storage-interface": self.storage_interface,
                "storage-config": self.storage.to_dict(include_inline_keys=include_inline_keys),
            }
        )
        for attr, wire in _REQUEST_OPTIONAL:
            value = getattr(self, attr)
            if value is None:
                continue
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(cast("tuple[str, ...]", value))  # databases, tables
            out[wire] = value
        return out


_STATUS_OPTIONAL = (
    ("message", "message"),
    ("artefact_path", "artefact-path"),
    ("unit", "unit"),
    ("phase", "phase"),
    ("started_at", "started-at"),
    ("finished_at", "finished-at"),
    ("backup_id", "backup-id"),
    ("backup_kind", "backup-kind"),
    ("parent_backup_id", "parent-backup-id"),
    ("size_bytes", "size-bytes"),
    ("sha256", "sha256"),
    ("compression_algorithm", "compression"),
    ("encrypted", "encrypted"),
    ("flavour", "flavour"),
    ("server_version", "server-version"),
    ("binlog_file", "binlog-file"),
    ("binlog_position", "binlog-position"),
    ("gtid_set", "gtid-set"),
    ("point_in_time", "point-in-time"),
    ("recovered_from_backup", "recovered-from-backup"),
    ("verify_backup_id", "verify-backup-id"),
)
_ECHOED = ("job-type", "job-config", "storage-interface", "storage-config")
# storage-config keys a status never echoes: inline keys are secret, a CA chain is big.
_NOT_ECHOED = ("access-key", "secret-key", "tls-ca-chain")

# (attribute, wire key) of a drill's `verification` object.
_VERIFICATION_FIELDS = (
    ("result", "result"),
    ("checked_at", "checked-at"),
    ("reason", "reason"),
    ("duration_seconds", "duration-seconds"),
    ("tables_checked", "tables-checked"),
    ("tables_compared", "tables-compared"),
    ("tables_skipped", "tables-skipped"),
    ("point_in_time", "point-in-time"),
)


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of a restore drill (a status's `verification` object).

    `result` is `pass` or `fail`; a failed drill carries its `reason`.
    """

    result: str
    checked_at: str
    reason: str | None = None
    duration_seconds: float | None = None
    tables_checked: int | None = None
    tables_compared: int | None = None
    tables_skipped: int | None = None
    point_in_time: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any], repr=False)

    @property
    def passed(self) -> bool:
        """True when the drill passed."""
        return self.result == "pass"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        """Build from a decoded `verification` object (schema-validated by the caller)."""
        known = {wire for _, wire in _VERIFICATION_FIELDS}
        values = {attr: data.get(wire) for attr, wire in _VERIFICATION_FIELDS[2:]}
        return cls(
            result=str(data["result"]),
            checked_at=str(data["checked-at"]),
            extra={k: v for k, v in data.items() if k not in known},
            **values,
        )

    def to_dict(self) -> dict[str, Any]:
        """Wire form (also the core of the verification document kept in storage)."""
        out: dict[str, Any] = dict(self.extra)
        for attr, wire in _VERIFICATION_FIELDS:
            value = getattr(self, attr)
            if value is not None:
                out[wire] = value
        return out


#: a status's `progress` object on the wire
Progress = TypedDict("Progress", {"bytes-done": int, "bytes-estimated": int}, total=False)


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """One job's outcome as a provider unit reports it (an item of its `jobs` array).

    `request` holds the echoed request fields (`job-type`, `job-config`,
    `storage-interface`, `storage-config` without inline keys), as the draft shows them.
    """

    job_id: str
    status: JobState
    request: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any], repr=False)
    message: str | None = None
    artefact_path: str | None = None
    unit: str | None = None
    phase: str | None = None
    bytes_done: int | None = None
    bytes_estimated: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    backup_id: str | None = None
    backup_kind: str | None = None
    parent_backup_id: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    compression_algorithm: str | None = None
    encrypted: bool | None = None
    flavour: str | None = None
    server_version: str | None = None
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid_set: str | None = None
    point_in_time: str | None = None
    recovered_from_backup: str | None = None
    verify_backup_id: str | None = None
    verification: Verification | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any], repr=False)

    @property
    def is_drill(self) -> bool:
        """True for the status of a restore drill (it echoes `verify-backup-id`)."""
        return self.verify_backup_id is not None

    @property
    def finished(self) -> bool:
        """True once the job ended, well or badly."""
        return self.status in (JobState.SUCCESS, JobState.ERROR)

    @property
    def job_type(self) -> JobType | None:
        """The echoed job type, if the provider echoed it."""
        value = self.request.get("job-type")
        return JobType(value) if value in ("backup", "restore") else None

    @classmethod
    def for_request(cls, job: JobRequest, status: JobState, **fields: Any) -> JobStatus:
        """A status for `job` that echoes its request fields (without inline credentials)."""
        wire = job.to_dict()
        request = {key: wire[key] for key in _ECHOED}
        fields.setdefault("verify_backup_id", job.verify_backup_id)
        return cls(job_id=job.job_id, status=status, request=request, **fields)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        """Build from one decoded, schema-validated status object."""
        values: dict[str, Any] = {attr: data.get(wire) for attr, wire in _STATUS_OPTIONAL}
        progress: Progress = data.get("progress") or {}
        verification = data.get("verification")
        known = {"job-id", "status", "progress", "verification", *_ECHOED}
        known |= {wire for _, wire in _STATUS_OPTIONAL}
        return cls(
            job_id=data["job-id"],
            status=JobState(data["status"]),
            request={k: data[k] for k in _ECHOED if k in data},
            bytes_done=progress.get("bytes-done"),
            bytes_estimated=progress.get("bytes-estimated"),
            verification=Verification.from_dict(verification) if verification else None,
            extra={k: v for k, v in data.items() if k not in known},
            **values,
        )

    def to_dict(self) -> dict[str, Any]:
        """Wire form of the status (validated by the caller that writes it)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(self.request)
        storage = out.get("storage-config")
        if isinstance(storage, Mapping):
            out["storage-config"] = {
                k: v for k, v in cast("Mapping[str, Any]", storage).items() if k not in _NOT_ECHOED
            }
        out["job-id"] = self.job_id
        out["status"] = self.status.value
        for attr, wire in _STATUS_OPTIONAL:
            value = getattr(self, attr)
            if value is not None:
                out[wire] = value
        if self.bytes_done is not None:
            progress = Progress({"bytes-done": self.bytes_done})
            if self.bytes_estimated is not None:
                progress["bytes-estimated"] = self.bytes_estimated
            out["progress"] = progress
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        return out

    def replace(self, **changes: Any) -> JobStatus:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)
