"""Backup metadata (``backup.json``), backup ids and the incomplete-backup record.

``backup.json`` is JSON with kebab-case keys and a ``format-version``; times are ISO
8601 in UTC. Keys this version does not know are kept in ``extra`` and written back, so
a newer writer's fields survive an older reader's rewrite.

The stored bytes' checksum is one of two kinds (``checksum``): ``sha256``, the SHA-256
of the whole artefact (format-version 1, every backup before version 2), or
``parts-sha256``, the SHA-256 of its upload parts' SHA-256s with the part plan
(``storage.checksum``; format-version 2, so an older reader says "upgrade" rather than
"corrupt").
"""

from __future__ import annotations

import re
import secrets
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import datetime
from typing import Any

from database_backup import timefmt
from database_backup.storage.checksum import PartsChecksum, WholeChecksum
from database_backup.timefmt import as_utc

from .documents import as_list, as_object
from .errors import MetadataError

#: the newest format this version reads and writes (1: a whole-artefact sha256 only)
FORMAT_VERSION = 2
_FORMAT_WHOLE_SHA256 = 1
KINDS = ("full", "incremental", "logical")
COMPRESSIONS = ("none", "zstd")
STATUS_COMPLETE = "complete"
BACKUP_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_backup_id(now: datetime) -> str:
    """Return a new backup id for a backup started at ``now`` (timezone-aware).

    Ids sort by start time: ``20261122T071500Z-3fa9`` (UTC second, then 4 random hex
    digits so two backups started in the same second differ).
    """
    return f"{timefmt.format_id_stamp(now)}-{secrets.token_hex(2)}"


def check_backup_id(backup_id: object) -> str:
    """Return ``backup_id`` if it is a safe single path segment, else raise ValueError."""
    if not isinstance(backup_id, str) or not BACKUP_ID_PATTERN.match(backup_id):
        raise ValueError(
            f"invalid backup id {backup_id!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128 characters, not starting with a punctuation mark)"
        )
    return backup_id


def format_time(moment: datetime) -> str:
    """A catalog time: UTC with a ``Z``, a fraction of a second kept (``...07:15:00.123456Z``)."""
    return timefmt.format_time(moment, exact=True)


def parse_time(value: object, what: str) -> datetime:
    """A catalog time (any RFC 3339 offset, ``Z`` accepted) as an aware UTC datetime.

    Raises:
        MetadataError: ``value`` is not such a time (``what`` names the field).
    """
    if not isinstance(value, str):
        raise MetadataError(f"{what} must be an ISO 8601 time string")
    try:
        return timefmt.parse_time(value)
    except ValueError:
        raise MetadataError(f"{what} is not an ISO 8601 time with a timezone: {value!r}") from None


def _kebab(name: str) -> str:
    return name.replace("_", "-")


_TIME_FIELDS = ("started_at", "finished_at")
_CHECKSUM_FIELDS = ("sha256", "parts_sha256")


@dataclass
class BackupMetadata:
    """What ``backup.json`` records about one complete backup."""

    backup_id: str
    kind: str
    started_at: datetime
    finished_at: datetime
    artefacts: list[str]
    stored_size: int
    compression: str
    encrypted: bool
    flavour: str
    server_version: str
    #: the whole artefact's SHA-256 (format 1), or None when ``parts_sha256`` is set
    sha256: str | None = None
    #: ``storage.checksum.PartsChecksum.to_json()`` of the artefact (format 2)
    parts_sha256: dict[str, Any] | None = None
    parent_id: str | None = None
    status: str = STATUS_COMPLETE
    job_id: str | None = None
    description: str | None = None
    raw_size: int | None = None
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid_set: str | None = None
    from_lsn: int | None = None
    to_lsn: int | None = None
    databases: list[str] | None = None
    tables: list[str] | None = None
    key_fingerprint: str | None = None
    #: per-table rows and checksums at the backup's point (`mysql.tablesums.TableSums`)
    table_sums: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    def __post_init__(self) -> None:
        """Check the values (raises MetadataError) and normalise times to UTC."""
        self.validate()
        self.started_at = as_utc(self.started_at)
        self.finished_at = as_utc(self.finished_at)

    def validate(self) -> None:
        """Raise MetadataError if a field has an invalid value."""
        try:
            check_backup_id(self.backup_id)
            if self.parent_id is not None:
                check_backup_id(self.parent_id)
        except ValueError as exc:
            raise MetadataError(str(exc)) from None
        _check_choice("kind", self.kind, KINDS)
        _check_choice("compression", self.compression, COMPRESSIONS)
        if self.kind == "incremental" and self.parent_id is None:
            raise MetadataError(f"incremental backup {self.backup_id} has no parent-id")
        if not self.artefacts or not all(_is_artefact_name(a) for a in self.artefacts):
            raise MetadataError(
                f"backup {self.backup_id}: artefacts must be a non-empty list of object names"
            )
        _check_fingerprint(self.backup_id, self.key_fingerprint, self.encrypted)
        self._check_checksum()
        for name in ("stored_size", "raw_size", "binlog_position", "from_lsn", "to_lsn"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise MetadataError(f"{_kebab(name)} must be a non-negative integer")
        for name in _TIME_FIELDS:
            if not isinstance(getattr(self, name), datetime):
                raise MetadataError(f"{_kebab(name)} must be a datetime")
        _check_table_sums(self.backup_id, self.table_sums)

    def _check_checksum(self) -> None:
        if (self.sha256 is None) == (self.parts_sha256 is None):
            raise MetadataError(
                f"backup {self.backup_id}: exactly one of sha256 and parts-sha256 is needed"
            )
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise MetadataError(f"backup {self.backup_id}: sha256 must be 64 hex digits")
        if self.parts_sha256 is not None:
            try:
                PartsChecksum.from_json(self.parts_sha256)
            except ValueError as exc:
                raise MetadataError(f"backup {self.backup_id}: {exc}") from None
            if len(self.artefacts) != 1:
                raise MetadataError(
                    f"backup {self.backup_id}: parts-sha256 describes one artefact, "
                    f"not {len(self.artefacts)}"
                )

    @property
    def checksum(self) -> WholeChecksum | PartsChecksum:
        """The stored bytes' checksum, to compare with what a read computes."""
        if self.parts_sha256 is not None:
            return PartsChecksum.from_json(self.parts_sha256)
        return WholeChecksum(str(self.sha256))

    @property
    def is_complete(self) -> bool:
        """Whether the metadata says the backup is complete."""
        return self.status == STATUS_COMPLETE

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (kebab-case keys, times as ISO 8601 UTC strings)."""
        version = _FORMAT_WHOLE_SHA256 if self.parts_sha256 is None else FORMAT_VERSION
        document: dict[str, Any] = {"format-version": version}
        for item in fields(self):
            if item.name == "extra":
                continue
            value: object = getattr(self, item.name)
            if value is None and item.name in _CHECKSUM_FIELDS:
                continue  # the other kind is the one this backup has
            items = as_list(value)
            if isinstance(value, datetime):  # the _TIME_FIELDS (checked by validate)
                value = format_time(value)
            elif items is not None:
                value = list(items)
            document[_kebab(item.name)] = value
        for key, value in self.extra.items():
            document.setdefault(key, value)
        return document

    @classmethod
    def from_dict(cls, document: object) -> BackupMetadata:
        """Build from a ``backup.json`` document; raise MetadataError if it is invalid."""
        fields_by_key = as_object(document)
        if fields_by_key is None:
            raise MetadataError("backup metadata must be a JSON object")
        version = fields_by_key.get("format-version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MetadataError("backup metadata has no valid format-version")
        if version > FORMAT_VERSION:
            raise MetadataError(
                f"backup metadata format-version {version} is newer than this software "
                f"understands ({FORMAT_VERSION}): upgrade to read it"
            )
        known = {_kebab(item.name): item for item in fields(cls) if item.name != "extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in fields_by_key.items():
            if key == "format-version":
                continue
            item = known.get(key)
            if item is None:
                extra[key] = value
            elif item.name in _TIME_FIELDS:
                values[item.name] = parse_time(value, key)
            else:
                values[item.name] = value
        missing = [
            key for key, item in known.items() if _required(item) and item.name not in values
        ]
        if missing:
            raise MetadataError(f"backup metadata lacks {', '.join(sorted(missing))}")
        _check_types(values)
        return cls(**values, extra=extra)


def _check_fingerprint(backup_id: str, value: str | None, encrypted: bool) -> None:
    """The key's fingerprint (``stream.crypto.fingerprint``), only on an encrypted backup."""
    if value is not None and not (encrypted and re.fullmatch(r"[0-9a-f]{16}", value)):
        raise MetadataError(
            f"backup {backup_id}: key-fingerprint must be 16 hex digits, and only on an "
            "encrypted backup"
        )


def _check_table_sums(backup_id: str, value: object) -> None:
    """``table-sums`` is an object (read by ``mysql.tablesums.TableSums``) or absent."""
    if value is not None and as_object(value) is None:
        raise MetadataError(f"backup {backup_id}: table-sums must be an object or null")


def _required(item: Field[Any]) -> bool:
    return item.default is MISSING and item.default_factory is MISSING


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_artefact_name(name: object) -> bool:
    return isinstance(name, str) and bool(BACKUP_ID_PATTERN.match(name))


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MetadataError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


_STRINGS = (
    "backup_id",
    "kind",
    "compression",
    "flavour",
    "server_version",
    "status",
)
_OPTIONAL_STRINGS = (
    "sha256",
    "parent_id",
    "job_id",
    "description",
    "binlog_file",
    "gtid_set",
    "key_fingerprint",
)
_OPTIONAL_LISTS = ("databases", "tables")


def _check_types(values: dict[str, Any]) -> None:
    """Type checks for values read from JSON (the dataclass checks the rest)."""
    for name in _STRINGS:
        if name in values and not isinstance(values[name], str):
            raise MetadataError(f"{_kebab(name)} must be a string")
    for name in _OPTIONAL_STRINGS:
        if values.get(name) is not None and not isinstance(values[name], str):
            raise MetadataError(f"{_kebab(name)} must be a string or null")
    if not isinstance(values.get("encrypted"), bool):
        raise MetadataError("encrypted must be true or false")
    if not isinstance(values.get("artefacts"), list):
        raise MetadataError("artefacts must be a list")
    for name in _OPTIONAL_LISTS:
        value: object = values.get(name)
        items = as_list(value)
        if value is not None and (items is None or not all(isinstance(v, str) for v in items)):
            raise MetadataError(f"{_kebab(name)} must be a list of strings or null")


@dataclass(frozen=True)
class IncompleteBackup:
    """A backup prefix without a valid, complete ``backup.json`` (failed or in progress)."""

    backup_id: str
    objects: tuple[str, ...]
    size: int
    last_modified: datetime
    reason: str

    status = "incomplete"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "backup-id": self.backup_id,
            "status": self.status,
            "reason": self.reason,
            "objects": list(self.objects),
            "stored-size": self.size,
            "last-modified": format_time(self.last_modified),
        }
