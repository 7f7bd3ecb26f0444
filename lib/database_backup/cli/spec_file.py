"""Reading the spec file: a private (0600) JSON file, completed by the environment's secrets.

The document itself is `database_backup.contract.EngineSpec`. Environment variables
override its secrets: `DATABASE_BACKUP_S3_ACCESS_KEY`, `DATABASE_BACKUP_S3_SECRET_KEY`,
`DATABASE_BACKUP_DB_PASSWORD`, `DATABASE_BACKUP_ENCRYPTION_KEY`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from database_backup.contract import JSON, EngineSpec, SpecError

ENV_ACCESS_KEY = "DATABASE_BACKUP_S3_ACCESS_KEY"
ENV_SECRET_KEY = "DATABASE_BACKUP_S3_SECRET_KEY"  # noqa: S105 - a variable name
ENV_DB_PASSWORD = "DATABASE_BACKUP_DB_PASSWORD"  # noqa: S105 - a variable name
ENV_ENCRYPTION_KEY = "DATABASE_BACKUP_ENCRYPTION_KEY"


def read_spec_file(path: Path) -> dict[str, JSON]:
    """Read the spec JSON, refusing a file that group or others could read.

    Raises:
        SpecError: missing, too open, or not a JSON object.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(f"the spec file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SpecError(
            f"the spec file {path} has mode {mode:04o}; it holds secrets, so it must not "
            f"be accessible by group or others: run `chmod 600 {path}`"
        )
    try:
        data: JSON = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"the spec file {path} is not valid JSON (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise SpecError(f"the spec file {path} must hold a JSON object")
    return data


def with_environment(data: Mapping[str, JSON], env: Mapping[str, str]) -> dict[str, JSON]:
    """The spec document with the environment's secrets put in (they win when set).

    The database password is taken even when empty (socket authentication has none).
    """
    merged = dict(data)
    storage = merged.get("storage")
    if isinstance(storage, dict):
        keys = {"access-key": env.get(ENV_ACCESS_KEY), "secret-key": env.get(ENV_SECRET_KEY)}
        merged["storage"] = {**storage, **{name: value for name, value in keys.items() if value}}
    if ENV_DB_PASSWORD in env:
        connection = merged.get("connection")
        base = connection if isinstance(connection, dict) else {}
        merged["connection"] = {**base, "password": env[ENV_DB_PASSWORD]}
    if env.get(ENV_ENCRYPTION_KEY):
        merged["encryption-key"] = env[ENV_ENCRYPTION_KEY]
    return merged


def build_spec(data: Mapping[str, JSON], env: Mapping[str, str]) -> EngineSpec:
    """Validate spec data and apply the environment's secrets.

    Raises:
        SpecError: a required value is missing or malformed.
    """
    return EngineSpec.from_json(with_environment(data, env))


def load_spec(path: Path, env: Mapping[str, str] | None = None) -> EngineSpec:
    """Read, check and complete the spec file at `path`."""
    return build_spec(read_spec_file(path), os.environ if env is None else env)
