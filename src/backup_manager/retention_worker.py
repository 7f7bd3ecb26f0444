"""The retention engine, run by the job runner's worker like the copy engine.

With `retain: false` in the spec it only rebuilds the indexes (the `reindex` action).

`python -m backup_manager.retention_worker retention --spec SPEC --state-file STATE`
applies the retention policy to each target (a cluster at a storage location): with
`reindex` it first rebuilds the cluster's catalog index from the per-backup files (the
daily run), then deletes what retention selects (never a held backup: each hold is read
again from `preserve.json` before the deletion), the shipped binlogs no kept backup needs,
and the multipart uploads abandoned for a day. A target that fails does not stop the
others. The result (deleted backups with the reason, binlogs deleted, errors) goes to the
state file, which the leader's next hook reads (`retention_jobs.collect`).
Exit codes: 0 success, 1 a target failed, 2 bad arguments or spec.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from database_backup.catalog import RetentionPolicy
from database_backup.catalog.documents import as_list, as_object
from database_backup.contract import ERROR, SUCCESS, EngineState, now_text
from database_backup.files import write_json_atomic as write_json
from database_backup.timefmt import parse_time, utc_now

from . import locations as locations_mod
from .catalogs import INCOMPLETE_UPLOAD_AGE, Catalogs, storage_errors
from .errors import ManagerError
from .locations import Location

logger = logging.getLogger("backup_manager.retention_worker")

EXIT_FAILED, EXIT_USAGE = 1, 2
COMMAND = "retention"


def policy_spec(policy: RetentionPolicy) -> dict[str, Any]:
    """The policy as the spec carries it."""
    return {
        "min-count": policy.min_count,
        "max-count": policy.max_count,
        "max-age-seconds": policy.max_age.total_seconds() if policy.max_age else None,
        "incomplete-grace-seconds": policy.incomplete_grace.total_seconds(),
    }


def policy_from_spec(data: Mapping[str, object]) -> RetentionPolicy:
    """Inverse of `policy_spec` (raises ValueError on a bad value)."""

    def number(key: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"policy {key} must be a number, not {value!r}")
        return float(value)

    min_count, max_count = number("min-count"), number("max-count")
    max_age, grace = number("max-age-seconds"), number("incomplete-grace-seconds")
    if min_count is None or grace is None:
        raise ValueError("the policy needs min-count and incomplete-grace-seconds")
    return RetentionPolicy(
        min_count=int(min_count),
        max_count=None if max_count is None else int(max_count),
        max_age=None if max_age is None else datetime.timedelta(seconds=max_age),
        incomplete_grace=datetime.timedelta(seconds=grace),
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """One cluster at one storage location."""

    app: str  #: the related application's name (or the cluster id)
    cluster_id: str
    location: str


@dataclasses.dataclass(frozen=True)
class RetentionSpec:
    """What a run does (read from the 0600 spec file: the locations carry credentials)."""

    retention_id: str
    policy: RetentionPolicy
    targets: tuple[Target, ...]
    locations: Mapping[str, Location]
    protected: tuple[str, ...] = ()
    reindex: bool = False
    retain: bool = True  #: False: only rebuild the indexes (the reindex action)
    upload_age: datetime.timedelta = INCOMPLETE_UPLOAD_AGE  #: abandoned multipart uploads
    requested_at: datetime.datetime | None = None  #: when the hook decided the run

    def upload_cutoff(self, now: datetime.datetime) -> datetime.timedelta:
        """The age of an upload abandoned when the run was requested (not when it starts)."""
        if self.requested_at is None:
            return self.upload_age
        return self.upload_age + max(datetime.timedelta(0), now - self.requested_at)

    @classmethod
    def from_json(cls, data: object) -> RetentionSpec:
        """Parse a spec document.

        Raises:
            ValueError: not a retention spec (what is missing or wrong is named).
        """
        spec = as_object(data) or {}
        missing = [n for n in ("retention-id", "policy", "targets", "locations") if n not in spec]
        if missing:
            raise ValueError(f"not a retention spec: {', '.join(missing)} missing")
        locations: dict[str, Location] = {}
        for item in as_list(spec["locations"]) or []:
            location = Location.from_spec(as_object(item) or {})
            locations[location.name] = location
        targets: list[Target] = []
        for item in as_list(spec["targets"]) or []:
            target = as_object(item) or {}
            cluster, name = str(target.get("cluster-id")), str(target.get("location"))
            if name not in locations:
                raise ValueError(f"target {cluster} names an unknown location {name!r}")
            targets.append(Target(str(target.get("app") or cluster), cluster, name))
        return cls(
            retention_id=str(spec["retention-id"]),
            policy=policy_from_spec(as_object(spec["policy"]) or {}),
            targets=tuple(targets),
            locations=locations,
            protected=tuple(str(item) for item in as_list(spec.get("protected")) or []),
            reindex=spec.get("reindex") is True,
            retain=spec.get("retain") is not False,
            upload_age=datetime.timedelta(seconds=_seconds(spec, "incomplete-upload-age-seconds")),
            requested_at=_time(spec.get("requested-at")),
        )


def _time(value: object) -> datetime.datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seconds(spec: Mapping[str, object], key: str) -> float:
    value = spec.get(key, INCOMPLETE_UPLOAD_AGE.total_seconds())
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a number of seconds, not {value!r}")
    return float(value)


def run(spec: RetentionSpec) -> EngineState:
    """Apply retention to every target of `spec`; return the final state (never raises)."""
    catalogs = Catalogs(
        spec.locations,
        "",
        opener=lambda location: locations_mod.open_storage(location, patient=True),
    )
    deleted: list[dict[str, str]] = []
    errors: list[str] = []
    indexed = held = 0
    try:
        for target in spec.targets:
            location = spec.locations[target.location]
            try:
                if spec.reindex:
                    with storage_errors(location, f"rebuilding the index of {target.app}"):
                        view = catalogs.catalog(target.cluster_id, location).reindex()
                    indexed, held = indexed + len(view.complete), held + len(view.held)
                if not spec.retain:
                    continue
                decisions = catalogs.apply_retention(
                    target.cluster_id,
                    location,
                    spec.policy,
                    spec.protected,
                    spec.upload_cutoff(utc_now()),
                )
            except ManagerError as exc:
                logger.error("retention of %s in %s: %s", target.app, location.name, exc)
                errors.append(str(exc))
                continue
            for decision in decisions:
                logger.info(
                    "retention deleted %s of %s in %s: %s",
                    decision.backup_id,
                    target.app,
                    location.name,
                    decision.reason,
                )
                deleted.append(
                    {
                        "app": target.app,
                        "location": location.name,
                        "backup-id": decision.backup_id,
                        "reason": decision.reason,
                    }
                )
    finally:
        catalogs.close()
    return EngineState(
        command=COMMAND,
        status=ERROR if errors else SUCCESS,
        phase="done",
        finished_at=now_text(),
        message="; ".join(errors)[:500] if errors else summary(deleted, spec, indexed, held),
        result={"deleted": deleted, "errors": errors, "reindexed": spec.reindex},
    )


def summary(
    deleted: Sequence[dict[str, str]], spec: RetentionSpec, indexed: int, held: int
) -> str:
    """One line: what the run deleted (or indexed)."""
    if not spec.retain:
        return f"indexed {indexed} complete backups ({held} held)"
    if not deleted:
        return "nothing to delete"
    ids = [item["backup-id"] for item in deleted]
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"deleted {len(ids)} backup{'s' if len(ids) != 1 else ''}: {shown}"


def read_spec(path: Path) -> RetentionSpec:
    """The spec (credentials inside: it must be readable by its owner only).

    Raises:
        ValueError: unreadable, not private, or not a retention spec.
    """
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} is readable by others: the spec holds credentials (chmod 600)")
    try:
        return RetentionSpec.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a retention spec: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """`retention --spec SPEC [--state-file STATE]`; return the exit code."""
    parser = argparse.ArgumentParser(prog="backup_manager.retention_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    retention = sub.add_parser(COMMAND, help="apply the retention policy")
    retention.add_argument("--spec", type=Path, required=True, help="JSON spec file (mode 0600)")
    retention.add_argument("--state-file", type=Path, help="JSON progress/result file to keep")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s retention: %(message)s"
    )
    state = EngineState.starting(COMMAND)
    try:
        spec = read_spec(args.spec)
    except (OSError, ValueError) as exc:
        state = dataclasses.replace(state, status=ERROR, phase="spec", message=str(exc))
        if args.state_file is not None:
            write_json(args.state_file, state.to_json())
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.state_file is not None:
        write_json(args.state_file, dataclasses.replace(state, phase="deleting").to_json())
    final = dataclasses.replace(run(spec), started_at=state.started_at, pid=state.pid)
    if args.state_file is not None:
        write_json(args.state_file, final.to_json())
    logger.info("retention %s: %s %s", spec.retention_id, final.status, final.message or "")
    return 0 if final.status == SUCCESS else EXIT_FAILED


if __name__ == "__main__":  # pragma: nocover
    sys.exit(main())
