"""The manager actions' parameters, loaded into typed objects and checked.

Juju checks `actions.yaml`'s schema first (types, enums, ranges, lengths, simple patterns,
unknown names). These models check every value again, since a Juju that skips a check (and
Scenario) reaches the charm with it, and each message names the parameter and shows a value
that works. No job is sent when a check fails.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import ops
import pydantic

from database_backup.interface import LATEST

from .errors import ManagerError

KINDS = ("full", "incremental", "logical")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_NAMES = 256
MAX_DESCRIPTION = 500
MAX_DATABASE = 64  # MySQL's limit on an identifier
MAX_TABLE = 2 * MAX_DATABASE + 1  # database.table
# The longest text each parameter takes: actions.yaml declares the same `maxLength`.
MAX_LENGTHS = {
    "application": 128,
    "location": 128,
    "to": 128,
    "from": 128,
    "cluster": 257,
    "source-cluster": 257,
    "backup-id": 128,
    "point-in-time": 40,
    "until": 40,
}
# Juju's rule for application names (the same rule names the storage locations).
APP_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$")
# The catalog's rule for backup ids (a safe single path segment).
BACKUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The interface's rules for database and table names.
DATABASE = re.compile(r"^[^./\s][^/\s]{0,63}$")
TABLE = re.compile(r"^[^./\s]{1,64}\.[^./\s]{1,64}$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Params = TypeVar("Params", bound=pydantic.BaseModel)


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def _echo(value: Any) -> str:
    """A given value as a message quotes it: repr, cut short (the message is one argument)."""
    return _clip(repr(value), 80)


def _from_iso(text: str) -> datetime.datetime:
    """`datetime.fromisoformat`, also taking a Z or z for UTC (Python 3.10 does not)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def parse_when(text: str, what: str) -> datetime.datetime:
    """An RFC 3339 time or a date (`2026-12-31` = midnight UTC); no offset means UTC."""
    value = text.strip()
    try:
        moment = _from_iso(value)
    except ValueError:
        raise ManagerError(
            f"{what} {_echo(text)} is not a time: use RFC 3339 like 2026-11-22T07:15:00Z "
            "or a date like 2026-12-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def load(event: ops.ActionEvent, model: type[Params]) -> Params:
    """The event's parameters as `model`, or a ManagerError saying what to give instead."""
    try:
        return event.load_params(model)
    except pydantic.ValidationError as exc:
        raise ManagerError(describe(exc)) from None


def describe(error: pydantic.ValidationError) -> str:
    """One sentence per bad parameter, as the admin typed it (kebab-case)."""
    parts: list[str] = []
    for item in error.errors():
        name = "-".join(str(p) for p in item["loc"] if isinstance(p, str)).replace("_", "-")
        if item["type"] == "value_error":
            parts.append(str(item.get("ctx", {}).get("error", item["msg"])))
        elif item["type"] == "missing":
            parts.append(f"give {name}=<value> (juju show-action backup-manager <action>)")
        else:
            parts.append(f"{name}={_echo(item['input'])}: {item['msg']}")
    return "; ".join(parts)


def _param(info: pydantic.ValidationInfo) -> str:
    name = info.field_name or "?"
    return "from" if name == "from_" else name.replace("_", "-")


def _text(value: Any, info: pydantic.ValidationInfo) -> str:
    name = _param(info)
    if not isinstance(value, str):
        raise ValueError(f"{name}={_echo(value)} must be text")
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise ValueError(
            f"{name} has {len(value)} characters: give at most {limit} "
            f"({name}={_echo(value)} is longer than any valid value)"
        )
    return value.strip()


def _app(value: Any, info: pydantic.ValidationInfo) -> str:
    text = _text(value, info)
    if text and not APP_NAME.match(text):
        raise ValueError(
            f"{_param(info)}={_echo(value)} is not an application name: give the database "
            "application as `juju status` shows it, like application=mysql"
        )
    return text


def _cluster(value: Any, info: pydantic.ValidationInfo) -> str:
    text = _text(value, info)
    segments = text.split("/")
    if text and (len(segments) != 2 or not all(BACKUP_ID.match(s) for s in segments)):
        raise ValueError(
            f"{_param(info)}={_echo(value)} is not a cluster: give its catalog prefix "
            "<model-uuid>/<application>, as list-backups shows it in the CLUSTER column"
        )
    return text


def _location(value: Any, info: pydantic.ValidationInfo) -> str:
    text = _text(value, info)
    if text and not APP_NAME.match(text):
        raise ValueError(
            f"{_param(info)}={_echo(value)} is not a location name: give `default` or the name of "
            "an s3-integrator application related to backup-manager (list-backups shows "
            "the locations)"
        )
    return text


def _backup_id(value: Any, info: pydantic.ValidationInfo, *, required: bool) -> str:
    text = _text(value, info)
    if not text:
        if required:
            raise ValueError(
                f"give {_param(info)}=<id> of the backup (list-backups shows the ids)"
            )
        return text
    if not BACKUP_ID.match(text):
        raise ValueError(
            f"{_param(info)}={_echo(value)} is not a backup id: ids look like "
            "20261121T010000Z-3fa9 (list-backups shows them)"
        )
    return text


def _names(value: Any, info: pydantic.ValidationInfo) -> tuple[str, ...]:
    """A list of database names (`databases`) or `database.table` names (`tables`)."""
    name = _param(info)
    example = "[shop.orders, shop.items]" if name == "tables" else "[shop, crm]"
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list: give {name}='{example}'")
    given = cast("Sequence[object]", value)
    if len(given) > MAX_NAMES:
        raise ValueError(
            f"{name} lists {len(given)} names: give at most {MAX_NAMES} (or leave {name} "
            "out and take whole databases)"
        )
    seen: set[str] = set()
    for item in given:
        if not isinstance(item, str):
            raise ValueError(f"{name}: {_echo(item)} is not a name: give {name}='{example}'")
        limit = MAX_TABLE if name == "tables" else MAX_DATABASE
        if len(item) > limit:
            raise ValueError(
                f"{name}: a name has {len(item)} characters: give at most {limit} "
                f"(database and table names have at most {MAX_DATABASE}): {_echo(item)}"
            )
        if name == "tables" and not TABLE.match(item):
            raise ValueError(
                f"tables: {_echo(item)} is not database.table: name each table with its "
                "database, like tables='[shop.orders]'"
            )
        if name != "tables" and not DATABASE.match(item):
            raise ValueError(
                f"databases: {_echo(item)} is not a database name: give names of at most 64 "
                "characters without '/' or spaces, not starting with '.', like "
                "databases='[shop, crm]'"
            )
        if item in seen:
            raise ValueError(f"{name}: {_echo(item)} is listed twice")
        seen.add(item)
    return tuple(cast("Sequence[str]", given))


def _flag(value: Any, info: pydantic.ValidationInfo) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{_param(info)}={_echo(value)} must be true or false")
    return value


def _count(value: Any, info: pydantic.ValidationInfo, low: int, high: int | None) -> int:
    name = _param(info)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={_echo(value)} must be a whole number")
    if value < low or (high is not None and value > high):
        if high is None:
            span = f"{low} or more (0 = start at the newest)"
        else:
            span = f"{low} to {high} (results come in pages: offset=<n> skips the newest n)"
        raise ValueError(f"{name}={value} is out of range: give {span}")
    return value


def _moment_or_latest(value: Any, info: pydantic.ValidationInfo) -> str:
    """`latest` (any case) or an RFC 3339 time with its zone: a recovery needs a moment."""
    text = _text(value, info)
    if not text:
        return text
    if text.lower() == LATEST:
        return LATEST
    if _DATE_ONLY.match(text):
        raise ValueError(
            f"point-in-time={_echo(value)} is a date, not a moment: give the time and its zone, "
            f"like {_clip(text)}T00:00:00Z (midnight UTC), or latest"
        )
    try:
        moment = _from_iso(text)
    except ValueError:
        raise ValueError(
            f"point-in-time={_echo(value)} is not a time: use RFC 3339 like 2026-11-22T07:15:00Z, "
            "or latest"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(
            f"point-in-time={_echo(value)} has no time zone: add Z for UTC "
            f"({_clip(text)}Z) or an offset like +01:00"
        )
    return text


def _date_or_time(value: Any, info: pydantic.ValidationInfo) -> str:
    text = _text(value, info)
    if text:
        try:
            parse_when(text, _param(info))
        except ManagerError:
            raise ValueError(
                f"{_param(info)}={_echo(value)} is not a time: use RFC 3339 like "
                "2026-12-31T12:00:00Z or a date like 2026-12-31 (midnight UTC)"
            ) from None
    return text


class _Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    @pydantic.field_validator("application", mode="before", check_fields=False)
    @classmethod
    def _application(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _app(value, info)

    @pydantic.field_validator("cluster", "source_cluster", mode="before", check_fields=False)
    @classmethod
    def _clusters(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _cluster(value, info)

    @pydantic.field_validator("location", "to", "from_", mode="before", check_fields=False)
    @classmethod
    def _locations(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _location(value, info)

    @pydantic.field_validator("databases", "tables", mode="before", check_fields=False)
    @classmethod
    def _lists(cls, value: Any, info: pydantic.ValidationInfo) -> tuple[str, ...]:
        return _names(value, info)

    @pydantic.field_validator("cancel", "include_binlogs", mode="before", check_fields=False)
    @classmethod
    def _flags(cls, value: Any, info: pydantic.ValidationInfo) -> bool:
        return _flag(value, info)


class _Paged(_Params):
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @pydantic.field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any, info: pydantic.ValidationInfo) -> int:
        return _count(value, info, 1, MAX_LIMIT)

    @pydantic.field_validator("offset", mode="before")
    @classmethod
    def _offset(cls, value: Any, info: pydantic.ValidationInfo) -> int:
        return _count(value, info, 0, None)


class _OneBackup(_Params):
    backup_id: str = pydantic.Field("", validate_default=True)

    @pydantic.field_validator("backup_id", mode="before")
    @classmethod
    def _id(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _backup_id(value, info, required=True)


class CreateBackup(_Params):
    """`create-backup`: empty `kind` means the backup-kind option."""

    application: str = ""
    kind: str = ""
    databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    description: str = ""
    location: str = ""

    @pydantic.field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        text = _text(value, info)
        if text and text not in KINDS:
            raise ValueError(
                f"kind={_echo(value)} is not a backup kind: give kind=full, kind=incremental or "
                "kind=logical (or leave kind out for the backup-kind option)"
            )
        return text

    @pydantic.field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        text = _text(value, info)
        if len(text) > MAX_DESCRIPTION:
            raise ValueError(
                f"description has {len(text)} characters: give at most {MAX_DESCRIPTION}"
            )
        return text


class PointInTime(_Params):
    """`point-in-time`: `latest` or a moment with its zone (empty: none)."""

    point_in_time: str = ""

    @pydantic.field_validator("point_in_time", mode="before")
    @classmethod
    def _point_in_time(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _moment_or_latest(value, info)

    @property
    def moment(self) -> datetime.datetime | None:
        """The point in time as a UTC datetime; None for none or `latest`."""
        if self.point_in_time in ("", LATEST):
            return None
        return parse_when(self.point_in_time, "point-in-time")


class Restore(PointInTime):
    """`restore`: a backup id, a point in time (`latest` or a moment), or both."""

    application: str = ""
    backup_id: str = ""
    point_in_time: str = ""
    location: str = ""
    source_cluster: str = ""
    databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()

    @pydantic.field_validator("backup_id", mode="before")
    @classmethod
    def _id(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _backup_id(value, info, required=False)

    @pydantic.model_validator(mode="after")
    def _something(self) -> Restore:
        if not self.backup_id and not self.point_in_time:
            raise ValueError(
                "say what to restore: backup-id=<id>, point-in-time=<RFC 3339 time> or "
                "point-in-time=latest (list-backups shows the ids and times)"
            )
        return self


class VerifyBackup(PointInTime):
    """`verify-backup`: a backup id (default: the newest), optionally a point in time."""

    application: str = ""
    backup_id: str = ""
    location: str = ""

    @pydantic.field_validator("backup_id", mode="before")
    @classmethod
    def _id(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _backup_id(value, info, required=False)


class _Scoped(_Params):
    """application= or cluster= (not both), and location=."""

    application: str = ""
    cluster: str = ""
    location: str = ""

    @pydantic.model_validator(mode="after")
    def _one_filter(self) -> _Scoped:
        _not_both(self.application, self.cluster)
        return self


class ListBackups(_Scoped, _Paged):
    """`list-backups`: one page, counted from the newest."""


class ListJobs(_Paged):
    """`list-jobs`: one page of the history, counted from the newest."""

    application: str = ""


class ClearHistory(_Params):
    """`clear-history`."""

    application: str = ""


class PreserveBackup(_OneBackup):
    """`preserve-backup`: `until` (a hold) or `cancel` (release), not both."""

    until: str = ""
    cancel: bool = False
    application: str = ""
    cluster: str = ""
    location: str = ""

    @pydantic.field_validator("until", mode="before")
    @classmethod
    def _until(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _date_or_time(value, info)

    @pydantic.model_validator(mode="after")
    def _one_of(self) -> PreserveBackup:
        if bool(self.until) == self.cancel:
            raise ValueError("give either until=<date> (hold) or cancel=true (release)")
        _not_both(self.application, self.cluster)
        return self


class CopyBackup(_OneBackup):
    """`copy-backup`."""

    to: str = ""
    from_: str = pydantic.Field("", alias="from")
    include_binlogs: bool = True
    application: str = ""


class DeleteBackup(_Scoped, _OneBackup):
    """`delete-backup`."""


class Reindex(_Scoped):
    """`reindex`: rebuild the catalog index of the related clusters (or one)."""


class ExportEncryptionKey(_Params):
    """`export-encryption-key`: no parameters."""


def _not_both(application: str, cluster: str) -> None:
    if application and cluster:
        raise ValueError(
            "give application=<name> (a related or removed application of this model) or "
            "cluster=<model-uuid>/<application> (any cluster in the bucket), not both"
        )


MODELS: dict[str, type[pydantic.BaseModel]] = {
    "create-backup": CreateBackup,
    "restore": Restore,
    "verify-backup": VerifyBackup,
    "list-backups": ListBackups,
    "list-jobs": ListJobs,
    "clear-history": ClearHistory,
    "preserve-backup": PreserveBackup,
    "copy-backup": CopyBackup,
    "delete-backup": DeleteBackup,
    "reindex": Reindex,
    "export-encryption-key": ExportEncryptionKey,
}
