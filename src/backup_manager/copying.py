"""Copy a backup between storage locations (regions), outside the hook (seed 001).

`plan` checks everything that can be checked at once (the backup exists, the locations
differ and answer with their credentials, an incremental's parent is already there) and
returns a spec; `launch` writes the spec to a 0600 file and starts this module as a
detached process (`python -m backup_manager.copying SPEC`); the worker copies each
artefact (server-side when both locations share endpoint and credentials, else streamed),
verifies the copy's SHA-256 against the source's `backup.json`, writes the new backup's
own `backup.json` (new id, `copied-from` note) last, optionally brings the shipped binary
logs along, and writes a result file the charm picks up on its next hook.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id

from . import locations as locations_mod
from .catalogs import Catalogs, format_time, storage_errors, utc_now
from .errors import ManagerError
from .locations import Location

STATE_DIR = Path("/var/lib/backup-manager")
_CHUNK = 1 << 20


def plan(
    catalogs: Catalogs,
    *,
    app: str,
    backup_id: str,
    source: Location,
    dest: Location,
    include_binlogs: bool,
    copy_id: str,
) -> dict[str, Any]:
    """Validate a copy and return its spec (credentials included: keep it in a 0600 file).

    Raises:
        ManagerError: same location, unknown backup, unreachable location, missing parent.
    """
    if source.name == dest.name:
        raise ManagerError(
            f"backup {backup_id} is already in location {dest.name!r}: copy it to another "
            f"location ({_others(catalogs, dest.name)})"
        )
    _, meta = catalogs.find(app, backup_id, source.name)
    catalogs.check(dest)
    existing = catalogs.complete(app, dest)
    parent_id = None
    if meta.parent_id is not None:
        parent_id = _copied(existing, source.name, meta.parent_id)
        if parent_id is None:
            raise ManagerError(
                f"backup {backup_id} is an incremental on top of {meta.parent_id}, which is "
                f"not in location {dest.name!r} yet: copy {meta.parent_id} first"
            )
    already = _copied(existing, source.name, backup_id)
    if already is not None:
        raise ManagerError(
            f"backup {backup_id} was already copied to location {dest.name!r} as {already}"
        )
    return {
        "copy-id": copy_id,
        "app": app,
        "cluster-id": catalogs.catalog(app, source).cluster_id,
        "backup-id": backup_id,
        "new-backup-id": new_backup_id(utc_now()),
        "new-parent-id": parent_id,
        "size": meta.stored_size,
        "include-binlogs": include_binlogs,
        "source": source.spec(),
        "dest": dest.spec(),
    }


def _others(catalogs: Catalogs, name: str) -> str:
    others = sorted(n for n in catalogs.locations if n != name)
    return "one of " + ", ".join(others) if others else "relate a second s3-integrator first"


def _copied(backups: list[BackupMetadata], location: str, backup_id: str) -> str | None:
    """The id of the copy of `location`:`backup_id` among `backups`, if any."""
    for backup in backups:
        origin = backup.extra.get("copied-from")
        if isinstance(origin, dict) and (origin.get("location"), origin.get("backup-id")) == (
            location,
            backup_id,
        ):
            return backup.backup_id
    return None


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Carry out a copy; return the result (never raises for storage problems)."""
    source = Location.from_spec(spec["source"])
    dest = Location.from_spec(spec["dest"])
    result: dict[str, Any] = {
        "copy-id": spec["copy-id"],
        "new-backup-id": spec["new-backup-id"],
        "location": dest.name,
    }
    try:
        size = _copy(spec, source, dest)
    except ManagerError as exc:
        return {**result, "status": "error", "message": str(exc), "finished-at": _now()}
    return {
        **result,
        "status": "success",
        "size": size,
        "message": f"copied from {source.name}:{spec['backup-id']}, sha256 verified",
        "finished-at": _now(),
    }


def _now() -> str:
    return format_time(utc_now())


def _copy(spec: dict[str, Any], source: Location, dest: Location) -> int:
    src_store = locations_mod.open_storage(source, patient=True)
    dst_store = locations_mod.open_storage(dest, patient=True)
    src = Catalog(src_store, spec["cluster-id"])
    dst = Catalog(dst_store, spec["cluster-id"])
    new_id = spec["new-backup-id"]
    with storage_errors(source, f"reading backup {spec['backup-id']}"):
        meta = src.read_metadata(spec["backup-id"])
    with storage_errors(dest, f"copying backup {meta.backup_id} to {dest.name}"):
        dst.ensure_cluster()
        for name in meta.artefacts:
            src_store.copy_to(
                dst_store, src.artefact_key(meta.backup_id, name), dst.artefact_key(new_id, name)
            )
        digest, size = _digest(dst_store, [dst.artefact_key(new_id, n) for n in meta.artefacts])
        if digest != meta.sha256 or size != meta.stored_size:
            dst_store.delete_prefix(dst.backup_prefix(new_id))
            raise ManagerError(
                f"the copy of backup {meta.backup_id} in {dest.name!r} does not match its "
                f"checksum (sha256 {digest}, {size} bytes; expected {meta.sha256}, "
                f"{meta.stored_size} bytes); the copy was deleted: retry the copy"
            )
        copied = dataclasses.replace(
            meta,
            backup_id=new_id,
            parent_id=spec.get("new-parent-id"),
            extra={
                **meta.extra,
                "copied-from": {
                    "location": source.name,
                    "backup-id": meta.backup_id,
                    "bucket": source.bucket,
                    "endpoint": source.endpoint,
                    "copied-at": _now(),
                },
            },
        )
        dst.write_metadata(copied)
    if spec.get("include-binlogs"):
        with storage_errors(dest, "copying the binary logs"):
            _copy_binlogs(src, dst, src_store, dst_store)
    return size


def _digest(store: Any, keys: list[str]) -> tuple[str, int]:
    """SHA-256 and size of the objects at `keys`, read back as one stream."""
    digest = hashlib.sha256()
    size = 0
    for key in keys:
        with store.open_stream(key) as reader:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _copy_binlogs(src: Catalog, dst: Catalog, src_store: Any, dst_store: Any) -> int:
    """Copy the shipped binary logs the destination lacks (or has with another size)."""
    have = {info.key: info.size for info in dst_store.list(dst.binlogs_prefix)}
    copied = 0
    for info in src_store.list(src.binlogs_prefix):
        key = dst.binlogs_prefix + info.key[len(src.binlogs_prefix) :]
        if have.get(key) != info.size:
            src_store.copy_to(dst_store, info.key, key)
            copied += 1
    return copied


# -- the detached worker ----------------------------------------------------------------


def spec_path(state_dir: Path, copy_id: str) -> Path:
    """Where the spec of a copy is written (0600, removed by the worker once read)."""
    return state_dir / f"{copy_id}.spec.json"


def result_path(state_dir: Path, copy_id: str) -> Path:
    """Where the worker writes the result."""
    return state_dir / f"{copy_id}.result.json"


def launch(spec: dict[str, Any], state_dir: Path) -> int:
    """Write the spec (0600) and start the worker in its own session; return its pid."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = spec_path(state_dir, spec["copy-id"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(spec, handle)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    log = (state_dir / f"{spec['copy-id']}.log").open("ab")
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backup_manager.copying", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    return process.pid


def worker(spec_file: Path) -> dict[str, Any]:
    """Read (and remove) the spec, copy, write the result file atomically."""
    spec = json.loads(spec_file.read_text())
    spec_file.unlink(missing_ok=True)
    try:
        result = run(spec)
    except Exception as exc:  # the charm must learn that the worker failed
        result = {
            "copy-id": spec["copy-id"],
            "new-backup-id": spec["new-backup-id"],
            "status": "error",
            "message": f"the copy failed unexpectedly: {type(exc).__name__}: {exc}",
            "finished-at": _now(),
        }
    target = result_path(spec_file.parent, spec["copy-id"])
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(target)
    return result


def collect(state_dir: Path, running: dict[str, int | None]) -> list[dict[str, Any]]:
    """Results of finished copies (their files removed), and errors for dead workers.

    Args:
        state_dir: where the workers write.
        running: copy id -> worker pid of the copies still marked as copying.
    """
    results = []
    for copy_id, pid in running.items():
        path = result_path(state_dir, copy_id)
        if path.exists():
            try:
                results.append(json.loads(path.read_text()))
            except json.JSONDecodeError:
                continue  # being written; next hook
            path.unlink(missing_ok=True)
        elif pid is not None and not _alive(pid):
            results.append(
                {
                    "copy-id": copy_id,
                    "status": "error",
                    "message": "the copy worker stopped without a result: run copy-backup again",
                    "finished-at": _now(),
                }
            )
    return results


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this very process is a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


if __name__ == "__main__":  # pragma: nocover
    worker(Path(sys.argv[1]))
