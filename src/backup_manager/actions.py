"""The manager's actions. Each returns at once: a job id and how to follow it.

Bad input fails the action (`event.fail`) with a message saying what to do, and no job
is sent. Results carry a readable `table` and machine-readable `json`.
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable
from typing import Any

import ops

from database_backup.interface import LATEST, format_time, utc_now

from . import copying, history, tables
from .catalogs import Catalogs
from .errors import ManagerError
from .locations import Location
from .manager import FOLLOW, Manager

BACKUP_COLUMNS = (
    ("ID", "backup-id"),
    ("APP", "app"),
    ("KIND", "kind"),
    ("PARENT", "parent"),
    ("STARTED", "started-at"),
    ("FINISHED", "finished-at"),
    ("SIZE", "size"),
    ("STATUS", "status"),
    ("HOLD", "hold"),
    ("LOCATION", "location"),
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


def parse_when(text: str, what: str) -> datetime.datetime:
    """An RFC 3339 time or a date (`2026-12-31` = midnight UTC); no offset means UTC."""
    value = text.strip()
    try:
        moment = datetime.datetime.fromisoformat(
            value.replace("Z", "+00:00").replace("z", "+00:00")
        )
    except ValueError:
        raise ManagerError(
            f"{what} {text!r} is not a time: use RFC 3339 like 2026-11-22T07:15:00Z "
            "or a date like 2026-12-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


class Actions:
    """Action handlers bound to a `Manager`."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    @property
    def names(self) -> list[str]:
        """The actions, as `ops` names them (underscores)."""
        return list(self._handlers())

    def _handlers(self) -> dict[str, tuple[Callable[[ops.ActionEvent, Catalogs], Any], bool]]:
        """Action name -> (body, needs the leader)."""
        return {
            "create_backup": (self.create_backup, True),
            "restore": (self.restore, True),
            "list_backups": (self.list_backups, False),
            "list_jobs": (self.list_jobs, False),
            "clear_history": (self.clear_history, True),
            "preserve_backup": (self.preserve_backup, True),
            "copy_backup": (self.copy_backup, True),
            "delete_backup": (self.delete_backup, True),
        }

    def run(self, event: ops.ActionEvent) -> None:
        """Run the action: leadership check, catalog lifetime, failures as `event.fail`."""
        name = event.handle.kind.removesuffix("_action")
        body, leader = self._handlers()[name]
        if leader and not self.manager.is_leader:
            event.fail("run this action on the leader: juju run backup-manager/leader ...")
            return
        catalogs = self.manager.catalogs()
        try:
            event.set_results(body(event, catalogs))
        except ManagerError as exc:
            event.fail(str(exc))
        finally:
            catalogs.close()

    # -- jobs ---------------------------------------------------------------------------

    def create_backup(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Ask a database application for a backup."""
        setup = self.manager.usable_setup()
        relation = self.manager.relation_for(event.params.get("application", ""))
        location = self._location(catalogs, event.params.get("location", ""))
        location = location or setup.backup_location
        catalogs.check(location)
        record = self.manager.request_backup(
            relation,
            kind=event.params.get("kind") or setup.config.backup_kind,
            location=location,
            databases=event.params.get("databases") or (),
            tables=event.params.get("tables") or (),
            description=event.params.get("description") or None,
            catalogs=catalogs,
        )
        return self._job_result(record)

    def restore(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Ask for a restore (and point-in-time recovery) of a database application."""
        setup = self.manager.usable_setup()
        relation = self.manager.relation_for(event.params.get("application", ""))
        app = relation.app.name if relation.app is not None else "?"
        backup_id = event.params.get("backup-id", "")
        target = event.params.get("point-in-time", "").strip()
        if not backup_id and not target:
            raise ManagerError(
                "say what to restore: backup-id=<id>, point-in-time=<RFC 3339 time> or "
                "point-in-time=latest (list-backups shows the ids and times)"
            )
        moment = None if target in ("", LATEST) else parse_when(target, "point-in-time")
        if backup_id:
            location, meta = catalogs.find(app, backup_id, event.params.get("location", ""))
            if moment is not None and moment < meta.finished_at:
                raise ManagerError(
                    f"the point in time {format_time(moment)} is before backup {backup_id} "
                    f"finished ({format_time(meta.finished_at)}): give a later time or an "
                    "older backup"
                )
            if moment is not None and moment > utc_now():
                raise ManagerError(
                    f"the point in time {format_time(moment)} is in the future: give a time "
                    "in the past, or point-in-time=latest"
                )
        else:
            location = self._location(catalogs, event.params.get("location", ""))
            location = location or setup.backup_location
            meta = catalogs.restore_target(app, location, moment)
        if target and not catalogs.has_binlogs(app, location):
            raise ManagerError(
                f"{app} has no shipped binary logs in location {location.name!r}, so there "
                "is nothing to replay to a point in time: restore a backup-id alone, or turn "
                "binlog-shipping on for future recoveries"
            )
        point_in_time = LATEST if target == LATEST else (format_time(moment) if moment else None)
        databases = event.params.get("databases") or ()
        tables_ = event.params.get("tables") or ()
        if (databases or tables_) and meta.kind != "logical":
            raise ManagerError(
                f"backup {meta.backup_id} is a {meta.kind} backup: databases and tables can "
                "only be picked from a logical backup (restore the whole backup instead)"
            )
        record = self.manager.request_restore(
            relation,
            location=location,
            backup_id=meta.backup_id,
            encrypted=meta.encrypted,
            compressed=meta.compression != "none",
            point_in_time=point_in_time,
            catalogs=catalogs,
            databases=databases,
            tables=tables_,
        )
        result = self._job_result(record)
        result["recovered-from-backup"] = meta.backup_id
        result["point-in-time"] = point_in_time or format_time(meta.finished_at)
        return result

    def _job_result(self, record: history.Record) -> dict[str, Any]:
        shown = {k: v for k, v in record.items() if k != "artefact-path"}
        return {
            "job-id": record["job-id"],
            "status": record["status"],
            "follow": FOLLOW,
            "table": tables.render([shown], JOB_COLUMNS[:9]),
            "json": json.dumps(shown, sort_keys=True),
        }

    def _location(self, catalogs: Catalogs, name: str) -> Location | None:
        return catalogs.location(name) if name else None

    # -- listings -----------------------------------------------------------------------

    def list_backups(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Every backup of the related applications (or one) in every (or one) location."""
        self.manager.usable_setup()
        app = event.params.get("application", "")
        apps = [self._app(app)] if app else self.manager.apps()
        rows = catalogs.rows(apps, event.params.get("location", ""))
        return {
            "count": len(rows),
            "table": tables.render(rows, BACKUP_COLUMNS),
            "json": json.dumps(rows, sort_keys=True),
        }

    def _app(self, app: str) -> str:
        relation = self.manager.relation_for(app)
        return relation.app.name if relation.app is not None else app

    def list_jobs(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """The job history (newest last), with phase and progress."""
        records = self.manager.sync_history() if self.manager.is_leader else None
        if records is None:
            records = self.manager.state.history()
        app = event.params.get("application", "")
        if app:
            records = [r for r in records if r.get("app") == app]
        limit = int(event.params.get("limit", 50))
        records = records[-limit:] if limit > 0 else records
        return {
            "count": len(records),
            "table": tables.render(records, JOB_COLUMNS),
            "json": json.dumps(records, sort_keys=True),
        }

    def clear_history(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Forget finished jobs: in the history and (through the library) the databag."""
        app = event.params.get("application", "")
        relations = [self.manager.relation_for(app)] if app else self.manager.database_relations()
        records = self.manager.sync_history()
        for relation in relations:
            self.manager.backups.clear_finished(relation)
        kept, removed = history.clear_finished(records, app or None)
        self.manager.state.save_history(kept)
        return {"removed": removed, "kept": len(kept)}

    # -- catalog operations -------------------------------------------------------------

    def preserve_backup(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Hold a backup until a date (retention skips it), or cancel the hold (seed 000)."""
        self.manager.usable_setup()
        app = self._app(event.params.get("application", ""))
        backup_id = event.params["backup-id"]
        until_text = event.params.get("until", "")
        cancel = bool(event.params.get("cancel", False))
        if bool(until_text) == cancel:
            raise ManagerError("give either until=<date> (hold) or cancel=true (release)")
        until = None
        if until_text:
            until = parse_when(until_text, "until")
            if until <= utc_now():
                raise ManagerError(
                    f"the hold date {format_time(until)} is in the past: give a future date "
                    "(or cancel=true to release the hold)"
                )
        location, _ = catalogs.find(app, backup_id, event.params.get("location", ""))
        catalogs.preserve(app, location, backup_id, until)
        row = {
            "backup-id": backup_id,
            "app": app,
            "location": location.name,
            "preserve-until": format_time(until) if until else None,
        }
        return {
            "backup-id": backup_id,
            "location": location.name,
            "preserve-until": format_time(until) if until else "cancelled",
            "json": json.dumps(row, sort_keys=True),
        }

    def delete_backup(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Delete a backup unless held, the parent of a kept incremental, or in use."""
        self.manager.usable_setup()
        app = self._app(event.params.get("application", ""))
        backup_id = event.params["backup-id"]
        location, _ = catalogs.find(app, backup_id, event.params.get("location", ""))
        protected = history.protected_backups(self.manager.state.history())
        catalogs.delete(app, location, backup_id, protected)
        return {"deleted": backup_id, "location": location.name}

    def copy_backup(self, event: ops.ActionEvent, catalogs: Catalogs) -> dict[str, Any]:
        """Copy a backup to another location, or bring one from another location (seed 001)."""
        setup = self.manager.usable_setup()
        app = self._app(event.params.get("application", ""))
        backup_id = event.params["backup-id"]
        dest = self._location(catalogs, event.params.get("to", "")) or setup.backup_location
        source = self._location(catalogs, event.params.get("from", ""))
        if source is None:
            source = self._holder(catalogs, app, backup_id, dest)
        copy_id = f"copy-{utc_now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        spec = copying.plan(
            catalogs,
            app=app,
            backup_id=backup_id,
            source=source,
            dest=dest,
            include_binlogs=bool(event.params.get("include-binlogs", False)),
            copy_id=copy_id,
        )
        record: history.Record = {
            "job-id": copy_id,
            "type": "copy",
            "app": app,
            "location": dest.name,
            "status": "copying",
            "backup-id": spec["new-backup-id"],
            "source-backup-id": backup_id,
            "source-location": source.name,
            "size": spec["size"],
            "requested-at": format_time(utc_now()),
            "message": f"copying {source.name}:{backup_id} to {dest.name}",
        }
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
            "created": record["requested-at"],
            "follow": FOLLOW,
            "json": json.dumps(record, sort_keys=True),
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
