"""Command-line entry point of the backup engine: `database-backup backup|restore|list|recover`.

Everything secret comes from a JSON spec file that must not be readable by group or others
(mode 0600 or stricter), or from environment variables, never from the command line::

    {
      "cluster-id": "<model-uuid>/<app>",
      "storage": {"bucket": "b", "endpoint": "http://127.0.0.1:7480", "region": "",
                  "path": "backups", "uri-style": "path", "tls-ca-chain": null,
                  "part-size-mb": 8, "max-concurrency": 4,
                  "access-key": "...", "secret-key": "..."},
      "connection": {"host": "127.0.0.1", "port": 3306, "socket": null,
                     "user": "backup", "password": "..."},
      "encryption-key": "<base64 of 32 bytes, optional: encrypts backups>",
      "server": {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"},
      "workdir": "/var/lib/database-backup"
    }

`server` may also be `{"type": "command", "datadir": ..., "start": [...], "stop": [...],
"status": [...]}`. Environment variables override the spec's secrets:
`DATABASE_BACKUP_S3_ACCESS_KEY`, `DATABASE_BACKUP_S3_SECRET_KEY`,
`DATABASE_BACKUP_DB_PASSWORD`, `DATABASE_BACKUP_ENCRYPTION_KEY`.

SIGTERM stops a command cleanly: a backup deletes its partial artefact, a restore puts the
previous data back (a SIGKILLed restore is undone by `recover`, or by the next restore).

With `--state-file PATH` the command keeps a small JSON document up to date (written to a
temporary file and renamed, so readers never see half of it): `status` (running, success,
error), `phase`, `bytes-done`, `bytes-estimated`, times, `message` and, on success,
`result`. Exit codes: 0 success, 1 the operation failed, 2 bad arguments or spec.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import json
import logging
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from database_backup.catalog import BackupMetadata, Catalog, IncompleteBackup
    from database_backup.mysql import ConnectionSpec, ServerControl

logger = logging.getLogger("database_backup.cli")

ENV_ACCESS_KEY = "DATABASE_BACKUP_S3_ACCESS_KEY"
ENV_SECRET_KEY = "DATABASE_BACKUP_S3_SECRET_KEY"  # noqa: S105 - a variable name
ENV_DB_PASSWORD = "DATABASE_BACKUP_DB_PASSWORD"  # noqa: S105 - a variable name
ENV_ENCRYPTION_KEY = "DATABASE_BACKUP_ENCRYPTION_KEY"

#: upload part size and parallel parts: the worker buffers about (concurrency + 1) parts,
#: so this bounds its memory (parts still grow after 1,000 of them, so 5 TB fit)
DEFAULT_PART_MB = 8
DEFAULT_CONCURRENCY = 4

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SpecError(Exception):
    """The spec file or environment is unusable; the message says how to fix it."""


class TerminatedError(Exception):
    """SIGTERM arrived: raised in the main thread so the engine cleans up or rolls back."""


def _on_sigterm(signum: int, _frame: object) -> None:
    raise TerminatedError(f"stopped by signal {signal.Signals(signum).name}")


@dataclass(frozen=True)
class Spec:
    """The validated content of a spec file (plus environment overrides)."""

    cluster_id: str
    storage: dict[str, Any]
    connection: dict[str, Any]
    encryption_key: bytes | None
    server: dict[str, Any] | None
    workdir: Path

    def __repr__(self) -> str:
        return f"Spec(cluster_id={self.cluster_id!r}, workdir={str(self.workdir)!r})"


# -- spec ---------------------------------------------------------------------------------


def read_spec_file(path: Path) -> dict[str, Any]:
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"the spec file {path} is not valid JSON (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise SpecError(f"the spec file {path} must hold a JSON object")
    return data


def _section(data: dict[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"the spec needs a {name!r} object")
    return dict(value)


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SpecError("the encryption key is not valid base64") from exc
    if len(key) != 32:
        raise SpecError(f"the encryption key must be 32 bytes (base64), got {len(key)}")
    return key


def build_spec(data: dict[str, Any], env: dict[str, str]) -> Spec:
    """Validate spec data and apply the environment's secrets.

    Raises:
        SpecError: a required value is missing or malformed.
    """
    cluster_id = data.get("cluster-id")
    if not isinstance(cluster_id, str) or not cluster_id.strip("/"):
        raise SpecError("the spec needs a non-empty 'cluster-id' (e.g. '<model-uuid>/<app>')")
    storage = _section(data, "storage")
    connection = _section(data, "connection", required=False)
    storage["access-key"] = env.get(ENV_ACCESS_KEY) or storage.get("access-key")
    storage["secret-key"] = env.get(ENV_SECRET_KEY) or storage.get("secret-key")
    _check_storage(storage)
    if ENV_DB_PASSWORD in env:
        connection["password"] = env[ENV_DB_PASSWORD]
    port = connection.get("port", 3306)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise SpecError("connection 'port' must be an integer between 1 and 65535")
    key_text = env.get(ENV_ENCRYPTION_KEY) or data.get("encryption-key")
    if key_text is not None and not isinstance(key_text, str):
        raise SpecError("'encryption-key' must be a base64 string")
    server = data.get("server")
    if server is not None:
        _check_server(server)
    workdir = data.get("workdir") or os.path.join(tempfile.gettempdir(), "database-backup")
    return Spec(
        cluster_id=cluster_id.strip("/"),
        storage=storage,
        connection=connection,
        encryption_key=_decode_key(key_text) if key_text else None,
        server=server,
        workdir=Path(workdir),
    )


def _check_storage(storage: dict[str, Any]) -> None:
    for name in ("bucket", "access-key", "secret-key"):
        if not isinstance(storage.get(name), str) or not storage[name]:
            raise SpecError(f"storage {name!r} is missing (spec file or environment)")
    if storage.get("uri-style", "path") not in ("path", "virtual"):
        raise SpecError("storage 'uri-style' must be 'path' or 'virtual'")
    part = storage.get("part-size-mb", DEFAULT_PART_MB)
    if not isinstance(part, int) or not 5 <= part <= 5120:
        raise SpecError("storage 'part-size-mb' must be an integer from 5 to 5120")
    concurrency = storage.get("max-concurrency", DEFAULT_CONCURRENCY)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 32:
        raise SpecError("storage 'max-concurrency' must be an integer from 1 to 32")


def _check_server(server: Any) -> None:
    if not isinstance(server, dict) or not isinstance(server.get("datadir"), str):
        raise SpecError("'server' must be an object with a 'datadir'")
    kind = server.get("type", "systemd")
    if kind == "systemd":
        if not isinstance(server.get("unit"), str):
            raise SpecError("a systemd 'server' needs a 'unit' (e.g. 'mysql')")
    elif kind == "command":
        for name in ("start", "stop", "status"):
            value = server.get(name)
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(part, str) for part in value)
            ):
                raise SpecError(f"a command 'server' needs {name!r} as a list of strings")
    else:
        raise SpecError("'server.type' must be 'systemd' or 'command'")


def load_spec(path: Path, env: dict[str, str] | None = None) -> Spec:
    """Read, check and complete the spec file at `path`."""
    return build_spec(read_spec_file(path), dict(os.environ) if env is None else env)


# -- state file ---------------------------------------------------------------------------


class StateFile:
    """JSON progress/result document, replaced atomically on every update."""

    def __init__(self, path: Path | None, command: str) -> None:
        self.path = path
        self.state: dict[str, Any] = {
            "command": command,
            "status": "running",
            "phase": "starting",
            "bytes-done": 0,
            "bytes-estimated": 0,
            "pid": os.getpid(),
            "started-at": _now(),
            "updated-at": _now(),
        }
        self._last_write = 0.0

    def update(self, *, force: bool = True, **values: Any) -> None:
        """Merge `values` (snake_case keys become kebab-case) and write the file."""
        for name, value in values.items():
            self.state[name.replace("_", "-")] = value
        self.state["updated-at"] = _now()
        now = time.monotonic()
        if force or now - self._last_write >= 1.0:
            self._last_write = now
            self.write()

    def write(self) -> None:
        """Write the state to a temporary file beside the target and rename it over."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.state, handle, indent=2, sort_keys=True, default=str)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def progress(self, event: Any) -> None:
        """Progress callback for the engine (throttled to one write per second)."""
        changed = event.phase != self.state.get("phase")
        self.update(
            force=changed,
            phase=event.phase,
            bytes_done=event.bytes_done,
            bytes_estimated=event.bytes_estimated,
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- building the engine's objects --------------------------------------------------------


def make_catalog(spec: Spec) -> Catalog:
    """S3Storage + Catalog for the spec's storage section and cluster id."""
    from database_backup.catalog import Catalog
    from database_backup.storage import S3Config, S3Storage

    section = spec.storage
    config = S3Config(
        bucket=section["bucket"],
        access_key=section["access-key"],
        secret_key=section["secret-key"],
        endpoint=section.get("endpoint") or None,
        region=section.get("region") or None,
        path=section.get("path") or "",
        uri_style=section.get("uri-style") or "path",
        tls_ca_chain=section.get("tls-ca-chain") or None,
    )
    storage = S3Storage(
        config,
        part_size=section.get("part-size-mb", DEFAULT_PART_MB) * 2**20,
        max_concurrency=section.get("max-concurrency", DEFAULT_CONCURRENCY),
    )
    return Catalog(storage, spec.cluster_id)


def make_connection(spec: Spec) -> ConnectionSpec:
    """ConnectionSpec from the spec's connection section."""
    from database_backup.mysql import ConnectionSpec

    section = spec.connection
    return ConnectionSpec(
        user=section.get("user") or "root",
        password=section.get("password") or "",
        host=section.get("host") or "127.0.0.1",
        port=int(section.get("port") or 3306),
        socket=section.get("socket") or None,
    )


def make_server(spec: Spec) -> ServerControl:
    """The ServerControl described by the spec's server section."""
    from database_backup.mysql import CommandServer, SystemdServer

    server = spec.server
    if server is None:
        raise SpecError("a restore needs a 'server' section (how to stop/start it, datadir)")
    if server.get("type", "systemd") == "command":
        return CommandServer(
            server["datadir"], start=server["start"], stop=server["stop"], status=server["status"]
        )
    return SystemdServer(server["unit"], server["datadir"])


# -- commands -----------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Run a full physical backup."""
    from database_backup.catalog import new_backup_id
    from database_backup.mysql import backup_full

    backup_id = args.backup_id or new_backup_id(datetime.now(timezone.utc))
    level = None if args.no_compression else args.compression_level
    state.update(backup_id=backup_id, phase="backup")
    logger.info("starting full backup %s of cluster %s", backup_id, spec.cluster_id)
    meta = backup_full(
        make_connection(spec),
        # built in the engine's preflight thread, started with the backup tool: importing
        # boto3 and creating the S3 client overlap with the tool's first seconds
        functools.partial(make_catalog, spec),
        backup_id=backup_id,
        job_id=args.job_id,
        compression_level=level,
        key=spec.encryption_key,
        progress=state.progress,
        workdir=spec.workdir / f"backup-{backup_id}",
        description=args.description,
        parallel=args.parallel,
    )
    result = meta.to_dict()
    state.update(status="success", phase="done", message="backup complete", result=result)
    print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Restore a full physical backup into the running server."""
    from database_backup.mysql import restore_physical

    server = make_server(spec)
    state.update(backup_id=args.backup_id, phase="download")
    logger.info("restoring backup %s into %s", args.backup_id, server.datadir)
    result = restore_physical(
        make_connection(spec),
        server,
        make_catalog(spec),
        args.backup_id,
        key=spec.encryption_key,
        progress=state.progress,
        workdir=spec.workdir / f"restore-{args.backup_id}",
        verify_timeout=args.verify_timeout,
        parallel=args.parallel,
    )
    summary = {
        "backup-id": result.backup_id,
        "flavour": result.flavour,
        "server-version": result.server_version,
        "stored-bytes": result.stored_bytes,
        "raw-bytes": result.raw_bytes,
        "seconds": round(result.seconds, 3),
        "binlog-file": result.binlog_file,
        "binlog-position": result.binlog_position,
        "gtid-set": result.gtid_set,
        "recovered": result.recovered,
    }
    state.update(status="success", phase="done", message="restore complete", result=summary)
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def cmd_recover(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Undo a restore whose worker died (restore does this by itself first)."""
    from database_backup.mysql import recover_interrupted_restore

    server = make_server(spec)
    state.update(phase="recover")
    message = recover_interrupted_restore(server) or "no interrupted restore found"
    logger.info("%s", message)
    state.update(status="success", phase="done", message=message)
    print(message)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """List the cluster's backups."""
    backups = make_catalog(spec).list_backups(include_incomplete=args.all)
    rows = [_list_row(item) for item in backups]
    state.update(status="success", phase="done", result=rows)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    print(format_table(rows))
    return EXIT_OK


_LIST_COLUMNS = (
    ("backup-id", "backup-id"),
    ("kind", "kind"),
    ("status", "status"),
    ("finished", "finished-at"),
    ("stored", "stored-size"),
    ("compression", "compression"),
    ("encrypted", "encrypted"),
)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The human-readable listing: one line per backup, aligned columns."""
    lines = [[title for title, _key in _LIST_COLUMNS]]
    for row in rows:
        cells = []
        for _title, key in _LIST_COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else str(value))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(_LIST_COLUMNS))]
    out = []
    for line in lines:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out)


def _list_row(item: BackupMetadata | IncompleteBackup) -> dict[str, Any]:
    row = dict(item.to_dict())
    row.setdefault("status", item.status)
    return row


# -- argument parsing ---------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _level(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 19:
        raise argparse.ArgumentTypeError("zstd levels go from 1 to 19")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no option takes a secret)."""
    parser = argparse.ArgumentParser(
        prog="database-backup",
        description="Back up and restore MySQL/MariaDB to S3. Secrets come from the 0600 "
        "spec file or DATABASE_BACKUP_* environment variables, never from arguments.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", type=Path, required=True, help="JSON spec file (mode 0600)")
    common.add_argument("--state-file", type=Path, help="JSON progress/result file to keep")

    backup = sub.add_parser("backup", parents=[common], help="take a full physical backup")
    backup.add_argument("--backup-id", help="id of the new backup (default: generated)")
    backup.add_argument("--job-id", help="job id recorded in the metadata")
    backup.add_argument("--description", help="free text recorded in the metadata")
    backup.add_argument("--compression-level", type=_level, default=3, help="zstd level")
    backup.add_argument("--no-compression", action="store_true", help="store uncompressed")
    backup.add_argument("--parallel", type=_positive, default=1, help="copy threads")

    restore = sub.add_parser("restore", parents=[common], help="restore a backup in place")
    restore.add_argument("--backup-id", required=True, help="the backup to restore")
    restore.add_argument("--parallel", type=_positive, default=1, help="unpack threads")
    restore.add_argument(
        "--verify-timeout", type=float, default=120.0, help="seconds for the server to answer"
    )

    sub.add_parser(
        "recover", parents=[common], help="undo a restore whose process died (server section)"
    )

    listing = sub.add_parser("list", parents=[common], help="list backups")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--all", action="store_true", help="include incomplete backups")
    cli_part2.register(sub, common, backup=backup, restore=restore)
    return parser


_COMMANDS = {
    "backup": cmd_backup,
    "restore": cmd_restore,
    "recover": cmd_recover,
    "list": cmd_list,
}

# part 2 (incremental and logical backups, binlog shipping, point-in-time recovery)
from database_backup import cli_part2  # noqa: E402 - binds to the names above

cli_part2.bind(sys.modules[__name__])
_COMMANDS.update(cli_part2.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    state = StateFile(args.state_file, args.command)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        state.update(status="error", phase="spec", message=str(exc), finished_at=_now())
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    state.write()
    try:
        code = _COMMANDS[args.command](args, spec, state)
    except SpecError as exc:
        state.update(status="error", message=str(exc), finished_at=_now())
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        logger.debug("failure details", exc_info=True)
        state.update(status="error", message=message, finished_at=_now())
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED
    state.update(finished_at=_now())
    return code


if __name__ == "__main__":
    sys.exit(main())
