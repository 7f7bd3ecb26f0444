"""The manager's actions. Each returns at once: a job id and how to follow it.

Parameters are loaded into typed objects (`params.py`); bad input fails the action
(`event.fail`) with a message saying what to give instead, and no job is sent. Results
carry a readable `table` and machine-readable `json`; listings come in pages and every
result value stays under the size `action-set` accepts (`results.py`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import ops
import pydantic

from database_backup.catalog import BackupMetadata, IncompleteBackup
from database_backup.interface import LATEST, format_time, utc_now
from database_backup.timefmt import format_id_stamp

from . import copying, drills, history, params, results, tables
from .catalogs import Catalogs, cluster_id
from .errors import ManagerError
from .locations import Location
from .manager import FOLLOW, Manager, app_name
from .params import KINDS
from .params import parse_when as parse_when  # re-exported: callers import it from here

BACKUP_COLUMNS = (
    ("ID", "backup-id"),
    ("APP", "app"),
    ("KIND", "kind"),
    ("PARENT", "parent"),
    ("STARTED", "started-at"),
    ("FINISHED", "finished-at"),
    ("SIZE", "size"),
    ("STATUS", "status"),
    ("VERIFIED", "verified"),  # the newest restore drill: `<checked-at> pass|fail` (C4)
    ("HOLD", "hold"),
    ("LOCATION", "location"),
    ("CLUSTER", "cluster"),
    ("DESCRIPTION", "description"),
)
JOB_COLUMNS = (
    ("JOB", "job-id"),
    ("APP", "app"),
    ("TYPE", "type"),
    ("KIND", "kind"),
    ("BACKUP", "backup-id"),
    ("STATUS", "status"),
    ("PHASE", "phase"),
    ("PROGRESS", "progress"),
    ("LOCATION", "location"),
    ("REQUESTED", "requested-at"),
    ("FINISHED", "finished-at"),
    ("MESSAGE", "message"),
)

Body = Callable[[Any, Catalogs], dict[str, Any]]


def _table_and_json(
    columns: tuple[tuple[str, str], ...],
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """How a listing shows its page: a text table of `columns`, and the rows as JSON."""
    return lambda shown: {
        "table": tables.render(shown, columns),
        "json": json.dumps(shown, sort_keys=True),
    }


class Actions:
    """Action handlers bound to a `Manager`."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    @property
    def names(self) -> list[str]:
        """The actions, as `ops` names them (underscores)."""
        return list(self._handlers())

    def _handlers(self) -> dict[str, tuple[type[pydantic.BaseModel], Body, bool]]:
        """Action name -> (its parameters, body, needs the leader)."""
        return {
            "create_backup": (params.CreateBackup, self.create_backup, True),
            "restore": (params.Restore, self.restore, True),
            "verify_backup": (params.VerifyBackup, self.verify_backup, True),
            "list_backups": (params.ListBackups, self.list_backups, False),
            "list_jobs": (params.ListJobs, self.list_jobs, False),
            "clear_history": (params.ClearHistory, self.clear_history, True),
            "preserve_backup": (params.PreserveBackup, self.preserve_backup, True),
            "copy_backup": (params.CopyBackup, self.copy_backup, True),
            "delete_backup": (params.DeleteBackup, self.delete_backup, True),
            "reindex": (params.Reindex, self.reindex, True),
            "export_encryption_key": (
                params.ExportEncryptionKey,
                self.export_encryption_key,
                True,
            ),
        }

    def run(self, event: ops.ActionEvent) -> None:
        """Run the action: parameters, leadership, catalog lifetime, failures as `event.fail`."""
        name = event.handle.kind.removesuffix("_action")
        model, body, leader = self._handlers()[name]
        try:
            given = params.load(event, model)
        except ManagerError as exc:
            event.fail(str(exc))
            return
        if leader and not self.manager.is_leader:
            event.fail("run this action on the leader: juju run backup-manager/leader ...")
            return
        catalogs = self.manager.catalogs()
        try:
            event.set_results(results.bounded(body(given, catalogs)))
        except ManagerError as exc:
            event.fail(str(exc))
        finally:
            catalogs.close()

    # -- jobs ---------------------------------------------------------------------------

    def create_backup(self, given: params.CreateBackup, catalogs: Catalogs) -> dict[str, Any]:
        """Ask a database application for a backup."""
        setup = self.manager.usable_setup()
        relation = self.manager.relation_for(given.application)
        location = self._location(catalogs, given.location) or setup.backup_location
        catalogs.check(location)
        record = self.manager.request_backup(
            relation,
            kind=given.kind or setup.config.backup_kind,
            location=location,
            databases=given.databases,
            tables=given.tables,
            description=given.description or None,
            catalogs=catalogs,
        )
        return self._job_result(record)

    def restore(self, given: params.Restore, catalogs: Catalogs) -> dict[str, Any]:
        """Ask for a restore (and point-in-time recovery) of a database application."""
        setup = self.manager.usable_setup()
        relation = self.manager.relation_for(given.application)
        source = given.source_cluster  # a clone: another cluster's backup and binlogs
        app = source or app_name(relation)
        backup_id, moment = given.backup_id, given.moment
        if backup_id:
            location, meta = catalogs.find(app, backup_id, given.location)
        else:
            location = self._location(catalogs, given.location) or setup.backup_location
            meta = catalogs.restore_target(app, location, moment)
        point_in_time = _replay_target(
            catalogs, app, location, meta, given, "restore a backup-id alone"
        )
        if (given.databases or given.tables) and meta.kind != "logical":
            raise ManagerError(
                f"backup {meta.backup_id} is a {meta.kind} backup: databases and tables can "
                "only be picked from a logical backup (restore the whole backup instead)"
            )
        record = self.manager.request_restore(
            relation,
            location=location,
            backup_id=meta.backup_id,
            encrypted=meta.encrypted,
            key_fingerprint=meta.key_fingerprint,
            compressed=meta.compression != "none",
            point_in_time=point_in_time,
            catalogs=catalogs,
            databases=given.databases,
            tables=given.tables,
            source=source,
        )
        result = self._job_result(record)
        if source:
            result["source-cluster"] = source
        result["recovered-from-backup"] = meta.backup_id
        result["point-in-time"] = point_in_time or format_time(meta.finished_at)
        return result

    def verify_backup(self, given: params.VerifyBackup, catalogs: Catalogs) -> dict[str, Any]:
        """Ask for a restore drill of a backup (default: the application's newest)."""
        setup = self.manager.usable_setup()
        relation = self.manager.relation_for(given.application)
        app = app_name(relation)
        drills.check_free(self.manager.sync_history(), app)
        if given.backup_id:
            location, meta = _complete(catalogs, app, given.backup_id, given.location)
        else:
            location = self._location(catalogs, given.location) or setup.backup_location
            meta = catalogs.newest(app, location, KINDS)
            if meta is None:
                raise ManagerError(
                    f"{app} has no complete backup in location {location.name!r} to verify: "
                    f"take one with `juju run backup-manager/leader create-backup "
                    f"application={app}`"
                )
        point_in_time = _replay_target(
            catalogs, app, location, meta, given, "verify the backup without point-in-time"
        )
        record = self.manager.request_drill(
            relation, location=location, backup=meta, point_in_time=point_in_time
        )
        result = self._job_result(record)
        result["verify-backup-id"] = meta.backup_id
        if point_in_time:
            result["point-in-time"] = point_in_time
        return result

    def _job_result(self, record: history.Record) -> dict[str, Any]:
        row = record.to_json()
        shown = results.clip_row({k: v for k, v in row.items() if k != "artefact-path"})
        return {
            "job-id": record.job_id,
            "status": row["status"],
            "follow": FOLLOW,
            "table": tables.render([shown], JOB_COLUMNS[:9]),
            "json": json.dumps(shown, sort_keys=True),
        }

    def _location(self, catalogs: Catalogs, name: str) -> Location | None:
        return catalogs.location(name) if name else None

    # -- listings -----------------------------------------------------------------------

    def list_backups(self, given: params.ListBackups, catalogs: Catalogs) -> dict[str, Any]:
        """One page of the backups of every cluster in storage (or one), newest last.

        The catalog is the truth: clusters no application is related to (removed, or in
        another model) are listed too.
        """
        self.manager.usable_setup()
        if given.cluster or given.application:
            rows = catalogs.rows([given.cluster or self._named(given.application)], given.location)
        else:
            rows = catalogs.rows(self.manager.apps(), given.location, discover=True)
        return results.page(
            rows,
            limit=given.limit,
            offset=given.offset,
            what="backups",
            action="list-backups",
            render=_table_and_json(BACKUP_COLUMNS),
        )

    def _app(self, app: str) -> str:
        relation = self.manager.relation_for(app)
        return app_name(relation, app)

    def _named(self, app: str) -> str:
        """A related application's name, or this model's cluster id of a removed one."""
        return app if app in self.manager.apps() else cluster_id(self.manager.model.uuid, app)

    def _holder_of(
        self, backup_id: str, application: str, cluster: str, location: str, catalogs: Catalogs
    ) -> tuple[str, Location]:
        """The cluster (app name or cluster id) and location of a backup to hold or delete.

        Without application= or cluster=, every cluster in storage is searched.
        """
        if cluster or application:
            name = cluster or self._named(application)
            return name, catalogs.find(name, backup_id, location)[0]
        apps = self.manager.apps()
        found = catalogs.locate(backup_id, apps, location)
        if found is None and len(apps) == 1:
            catalogs.find(apps[0], backup_id, location)  # raises, naming the application
        if found is None:
            where = f"location {location!r}" if location else "any storage location"
            raise ManagerError(
                f"there is no complete backup {backup_id!r} in any cluster of {where}: run "
                "`juju run backup-manager/leader list-backups` to see the ids"
            )
        return found

    def list_jobs(self, given: params.ListJobs, catalogs: Catalogs) -> dict[str, Any]:
        """One page of the job history (newest last), with phase and progress."""
        records = self.manager.sync_history() if self.manager.is_leader else None
        if records is None:
            records = self.manager.state.history()
        if given.application:
            records = [r for r in records if r.app == given.application]
        return results.page(
            [record.to_json() for record in records],
            limit=given.limit,
            offset=given.offset,
            what="jobs",
            action="list-jobs",
            render=_table_and_json(JOB_COLUMNS),
        )

    def clear_history(self, given: params.ClearHistory, catalogs: Catalogs) -> dict[str, Any]:
        """Forget finished jobs: in the history and (through the library) the databag."""
        app = given.application
        relations = [self.manager.relation_for(app)] if app else self.manager.database_relations()
        records = self.manager.sync_history()
        for relation in relations:
            self.manager.backups.clear_finished(relation)
        kept, removed = history.clear_finished(records, app or None)
        self.manager.state.save_history(kept)
        return {"removed": removed, "kept": len(kept)}

    # -- catalog operations -------------------------------------------------------------

    def preserve_backup(self, given: params.PreserveBackup, catalogs: Catalogs) -> dict[str, Any]:
        """Hold a backup until a date (retention skips it), or cancel the hold."""
        self.manager.usable_setup()
        backup_id = given.backup_id
        until = None
        if given.until:
            until = parse_when(given.until, "until")
            if until <= utc_now():
                raise ManagerError(
                    f"the hold date {format_time(until)} is in the past: give a future date "
                    "(or cancel=true to release the hold)"
                )
        app, location = self._holder_of(
            backup_id, given.application, given.cluster, given.location, catalogs
        )
        catalogs.preserve(app, location, backup_id, until)
        row = {
            "backup-id": backup_id,
            "app": app.rsplit("/", 1)[-1],
            "cluster": catalogs.cluster_of(app),
            "location": location.name,
            "preserve-until": format_time(until) if until else None,
        }
        return {
            "backup-id": backup_id,
            "location": location.name,
            "preserve-until": format_time(until) if until else "cancelled",
            "cluster": row["cluster"],
            "json": json.dumps(row, sort_keys=True),
        }

    def delete_backup(self, given: params.DeleteBackup, catalogs: Catalogs) -> dict[str, Any]:
        """Delete a backup unless held, the parent of a kept incremental, or in use."""
        self.manager.usable_setup()
        backup_id = given.backup_id
        app, location = self._holder_of(
            backup_id, given.application, given.cluster, given.location, catalogs
        )
        protected = history.protected_backups(self.manager.state.history())
        catalogs.delete(app, location, backup_id, protected)
        return {
            "deleted": backup_id,
            "location": location.name,
            "cluster": catalogs.cluster_of(app),
        }

    def reindex(self, given: params.Reindex, catalogs: Catalogs) -> dict[str, Any]:
        """Rebuild the catalog indexes in a worker (returns at once with its job id)."""
        setup = self.manager.usable_setup()
        if given.cluster or given.application:
            apps = [given.cluster or self._named(given.application)]
        else:
            apps = self.manager.apps()
        location = self._location(catalogs, given.location)
        locations = [location] if location is not None else list(setup.locations.values())
        record = self.manager.reindex(apps, locations)
        return {"job-id": record.job_id, "status": "running", "follow": FOLLOW}

    def export_encryption_key(
        self, given: params.ExportEncryptionKey, catalogs: Catalogs
    ) -> dict[str, Any]:
        """The key this manager generated, for the admin to keep (ends the status reminder)."""
        return self.manager.export_encryption_key()

    def copy_backup(self, given: params.CopyBackup, catalogs: Catalogs) -> dict[str, Any]:
        """Copy a backup to another location, or bring one from another location."""
        setup = self.manager.usable_setup()
        app = self._app(given.application)
        backup_id = given.backup_id
        dest = self._location(catalogs, given.to) or setup.backup_location
        source = self._location(catalogs, given.from_)
        if source is None:
            source = self._holder(catalogs, app, backup_id, dest)
        copy_id = f"copy-{format_id_stamp(utc_now())}-{secrets.token_hex(3)}"
        spec = copying.plan(
            catalogs,
            app=app,
            backup_id=backup_id,
            source=source,
            dest=dest,
            include_binlogs=given.include_binlogs,
            copy_id=copy_id,
        )
        record = history.copy_record(
            copy_id=copy_id,
            app=app,
            source=source.name,
            source_backup_id=backup_id,
            dest=dest.name,
            backup_id=spec["new-backup-id"],
            size=spec["size"],
        )
        records = self.manager.state.history()
        records.append(record)
        self.manager.state.save_history(records)
        pid = copying.launch(spec, copying.STATE_DIR)
        running = self.manager.state.copies()
        running[copy_id] = pid
        self.manager.state.save_copies(running)
        return {
            "job-id": copy_id,
            "backup-id": spec["new-backup-id"],
            "location": dest.name,
            "status": "copying",
            "size": history.human_size(spec["size"]),
            "source": f"{source.name}:{backup_id}",
            "created": record.requested_at,
            "follow": FOLLOW,
            "json": json.dumps(record.to_json(), sort_keys=True),
        }

    def _holder(self, catalogs: Catalogs, app: str, backup_id: str, dest: Location) -> Location:
        """The location (other than `dest`) holding `backup_id`."""
        for location in catalogs.locations.values():
            if location.name == dest.name:
                continue
            try:
                return catalogs.find(app, backup_id, location.name)[0]
            except ManagerError:
                continue
        location, _ = catalogs.find(app, backup_id, dest.name)  # raises if unknown anywhere
        raise ManagerError(
            f"backup {backup_id} is in location {location.name!r}, the copy's destination: "
            "copy to the same location is pointless; give to=<another location> (or "
            "from=<location> to bring a backup from elsewhere)"
        )


def _complete(
    catalogs: Catalogs, app: str, backup_id: str, location_name: str
) -> tuple[Location, BackupMetadata]:
    """The complete backup `backup_id` of `app`; an incomplete one is refused as such."""
    try:
        return catalogs.find(app, backup_id, location_name)
    except ManagerError:
        wanted = (
            [catalogs.location(location_name)] if location_name else catalogs.locations.values()
        )
        for location in wanted:
            for entry in catalogs.entries(app, location):
                if isinstance(entry, IncompleteBackup) and entry.backup_id == backup_id:
                    raise ManagerError(
                        f"backup {backup_id} of {app} is incomplete ({entry.reason}) in "
                        f"location {location.name!r}: it cannot be restored, so there is "
                        "nothing to verify; pick a complete backup (list-backups, STATUS "
                        "complete)"
                    ) from None
        raise


def _replay_target(
    catalogs: Catalogs,
    app: str,
    location: Location,
    meta: BackupMetadata,
    given: params.PointInTime,
    instead: str,
) -> str | None:
    """The point in time to replay to after `meta` (None: none), checked against it.

    Refused: a moment before the backup finished or in the future, and any point in time
    when the cluster has no shipped binary logs (`instead` says what to do then).
    """
    moment = given.moment
    if moment is not None and moment < meta.finished_at:
        raise ManagerError(
            f"the point in time {format_time(moment)} is before backup {meta.backup_id} "
            f"finished ({format_time(meta.finished_at)}): give a later time or an "
            "older backup"
        )
    if moment is not None and moment > utc_now():
        raise ManagerError(
            f"the point in time {format_time(moment)} is in the future: give a time "
            "in the past, or point-in-time=latest"
        )
    if given.point_in_time and not catalogs.has_binlogs(app, location):
        raise ManagerError(
            f"{app} has no shipped binary logs in location {location.name!r}, so there "
            f"is nothing to replay to a point in time: {instead}, or turn "
            "binlog-shipping on for future recoveries"
        )
    if given.point_in_time == LATEST:
        return LATEST
    return format_time(moment) if moment else None
