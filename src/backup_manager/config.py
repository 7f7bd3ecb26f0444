"""The backup-manager's configuration as a validated model."""

from __future__ import annotations

import datetime
import re

import ops
import pydantic
from croniter import croniter

from database_backup.catalog import RetentionPolicy

from .schedule import Schedule

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> datetime.timedelta | None:
    """Parse `12h`, `30d` or `8w`; empty means none. Raises ValueError otherwise."""
    if not text.strip():
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 12h, 30d or 8w")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return datetime.timedelta(**{_UNITS[match.group(2)]: amount})


def check_cron(expression: str) -> str:
    """Return a stripped cron expression (five fields) or raise ValueError saying why."""
    expression = " ".join(expression.split())
    if not expression:
        return ""
    if len(expression.split()) != 5:
        raise ValueError(
            f"{expression!r} is not a cron expression with five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
        )
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a valid cron expression")
    return expression


class ManagerConfig(pydantic.BaseModel):
    """Charm config, read with `self.load_config(ManagerConfig)`."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    backup_schedule: str = "0 2 * * *"
    backup_kind: str = "full"
    full_backup_schedule: str = ""
    drill_schedule: str = ""
    drill_point_in_time: bool = False
    compression: bool = True
    compression_level: int = pydantic.Field(3, ge=1, le=19)
    encryption: bool = False
    encryption_key_secret: ops.Secret | None = None
    binlog_shipping: bool = True
    binlog_max_lag: int = pydantic.Field(60, ge=10, le=86400)
    retention_min_count: int = pydantic.Field(2, ge=1)
    retention_max_count: int = pydantic.Field(0, ge=0)
    retention_max_age: str = "30d"
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_path: str = ""
    s3_uri_style: str = "path"
    s3_tls_ca_chain: str = ""
    s3_credentials: ops.Secret | None = None
    backup_location: str = ""

    @pydantic.field_validator("backup_schedule", "full_backup_schedule", "drill_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @pydantic.field_validator("backup_kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in ("full", "incremental", "logical"):
            raise ValueError(f"{value!r} is not one of full, incremental, logical")
        return value

    @pydantic.field_validator("retention_max_age")
    @classmethod
    def _age(cls, value: str) -> str:
        parse_duration(value)
        return value.strip()

    @pydantic.field_validator("s3_uri_style")
    @classmethod
    def _uri_style(cls, value: str) -> str:
        if value not in ("path", "virtual"):
            raise ValueError(f"{value!r} is not one of path, virtual")
        return value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ManagerConfig:
        if self.retention_max_count and self.retention_max_count < self.retention_min_count:
            raise ValueError(
                "retention-max-count must be 0 (no limit) or at least retention-min-count"
            )
        if self.full_backup_schedule and self.backup_kind != "incremental":
            raise ValueError(
                "full-backup-schedule only makes sense with backup-kind=incremental "
                "(fulls on that schedule, incrementals on backup-schedule)"
            )
        return self

    @property
    def max_age(self) -> datetime.timedelta | None:
        """Retention's maximum age, or None for no limit."""
        return parse_duration(self.retention_max_age)

    @property
    def retention(self) -> RetentionPolicy:
        """The catalog's retention policy from the retention-* options."""
        return RetentionPolicy(
            min_count=self.retention_min_count,
            max_count=self.retention_max_count or None,
            max_age=self.max_age,
        )

    @property
    def schedule(self) -> Schedule:
        """The backup schedule from backup-schedule, backup-kind and full-backup-schedule."""
        return Schedule(self.backup_schedule, self.backup_kind, self.full_backup_schedule)

    @property
    def has_s3_settings(self) -> bool:
        """True when storage is configured through the s3-* options."""
        return bool(self.s3_bucket or self.s3_credentials is not None)


def describe_errors(error: pydantic.ValidationError) -> str:
    """One line naming each invalid option (kebab-case, as `juju config` spells it) and why."""
    parts: list[str] = []
    for item in error.errors():
        option = "-".join(str(p) for p in item["loc"]).replace("_", "-")
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{option}: {message}" if option else message)
    return "; ".join(parts)
