"""The manager's logic over ops: requests, secrets, history, schedule, retention, status.

`charm.py` observes events and delegates here; the actions (`actions.py`) use the same
methods. The database is never touched: everything is a job request through the
`database_backup` library, or a catalog operation in object storage.
"""

from __future__ import annotations

import datetime
import functools
import logging
import secrets
from collections.abc import Callable, Sequence

import ops
from object_storage import S3Requirer

from database_backup.catalog import BackupMetadata
from database_backup.interface import (
    BackupKind,
    DatabaseBackupError,
    DatabaseBackupRequirer,
    JobRequest,
    JobStatus,
    JobType,
    format_time,
    remote_app,
    utc_now,
)
from database_backup.storage import StorageError
from database_backup.timefmt import format_id_stamp

from . import (
    catalog_summary,
    copying,
    drills,
    encryption,
    history,
    joblines,
    retention_jobs,
    schedule,
)
from . import setup as setup_mod
from . import status as status_mod
from .catalogs import Catalogs
from .config import ManagerConfig
from .errors import ManagerError
from .exporter import hooks as exporter_hooks
from .locations import Location
from .state import PeerState

logger = logging.getLogger(__name__)

FOLLOW = "juju run backup-manager/leader list-jobs"


def app_name(relation: ops.Relation, default: str = "?") -> str:
    """The name of the relation's remote application (`default` if Juju did not say)."""
    app = remote_app(relation)
    return app.name if app is not None else default


def credentials_label(location: str) -> str:
    """Label of the app-owned secret carrying a location's credentials to the providers."""
    return f"credentials-{location}"


class Manager:
    """Everything the charm does, given its relation helpers."""

    def __init__(
        self, charm: ops.CharmBase, backups: DatabaseBackupRequirer, s3: S3Requirer
    ) -> None:
        self.charm = charm
        self.model = charm.model
        self.backups = backups
        self.s3 = s3

    @functools.cached_property
    def setup(self) -> setup_mod.Setup:
        """Config and storage locations of this hook."""
        return setup_mod.read(self.charm, self.s3)

    @property
    def state(self) -> PeerState:
        """The peer app databag."""
        return PeerState(self.model)

    @property
    def is_leader(self) -> bool:
        """Whether this unit leads."""
        return self.model.unit.is_leader()

    @functools.cached_property
    def recorder(self) -> catalog_summary.Recorder:
        """The summary of the backups in storage that the status speaks from."""
        return catalog_summary.Recorder(self.model)

    def catalogs(self) -> Catalogs:
        """Catalog access over every location of this hook (its reads refresh the summary)."""
        return catalog_summary.RecordingCatalogs(
            self.setup.locations, self.model.uuid, recorder=self.recorder
        )

    # -- relations ----------------------------------------------------------------------

    def database_relations(self) -> list[ops.Relation]:
        """Relations to database applications (remote app known)."""
        return [r for r in self.backups.relations if remote_app(r) is not None]

    def apps(self) -> list[str]:
        """Names of the related database applications."""
        return sorted(app_name(r) for r in self.database_relations())

    def relation_for(self, app: str) -> ops.Relation:
        """The relation to `app` (or the only one when `app` is empty)."""
        relations = {app_name(r): r for r in self.database_relations()}
        if not relations:
            raise ManagerError(
                "no database application is related: juju integrate "
                "backup-manager:database-backup <database-app>"
            )
        if not app:
            if len(relations) == 1:
                return next(iter(relations.values()))
            raise ManagerError(
                f"several database applications are related ({', '.join(sorted(relations))}):"
                " say which with application=<name>"
            )
        if app not in relations:
            raise ManagerError(
                f"unknown application {app!r}: the related database applications are "
                f"{', '.join(sorted(relations))}"
            )
        return relations[app]

    def cluster_id(self, relation: ops.Relation) -> str:
        """`<model-uuid>/<app>`: the catalog prefix of that database cluster."""
        app = app_name(relation, "unknown")
        return f"{self.model.uuid}/{app}"

    def usable_setup(self) -> setup_mod.Ready:
        """The usable setup, or a ManagerError saying what to fix first."""
        setup = self.setup
        if setup.config is None:
            raise ManagerError(f"the charm config is invalid ({setup.config_error}): fix it first")
        ready = setup.ready
        if ready is None:
            reasons = setup.blocked + setup.waiting or ["no storage location"]
            raise ManagerError(f"storage is not ready: {'; '.join(reasons)}")
        return ready

    # -- secrets ------------------------------------------------------------------------

    def _app_secret(self, label: str, content: dict[str, str] | None) -> ops.Secret:
        """The app-owned secret `label` (created, or updated when `content` differs)."""
        try:
            secret = self.model.get_secret(label=label)
        except ops.SecretNotFoundError:
            if content is None:
                raise
            return self.model.app.add_secret(content, label=label)
        if content is not None and secret.peek_content() != content:
            secret.set_content(content)
        return secret

    def _granted_id(self, secret: ops.Secret) -> str:
        for relation in self.database_relations():
            secret.grant(relation)
        secret_id = secret.id or secret.get_info().id
        return secret_id

    def credentials_secret_id(self, location: Location) -> str:
        """Id of the secret with `location`'s credentials, granted to every database app."""
        secret = self._app_secret(credentials_label(location.name), location.credentials)
        return self._granted_id(secret)

    def _admin_key(self) -> encryption.Key | None:
        """The admin's key (`encryption-key-secret`), None if unset; ManagerError if unusable."""
        if self.setup.encryption_error:
            raise ManagerError(self.setup.encryption_error)
        return self.setup.encryption_key

    def encryption_secret_id(self) -> str | None:
        """Id of the secret with the key new backups use (granted), None when encryption is off.

        The admin's key when `encryption-key-secret` is set, else one generated once.
        """
        config = self.setup.config
        if config is None or not config.encryption:
            return None
        key = self._admin_key() or encryption.generated_key(self.model, create=True)
        assert key is not None  # noqa: S101 - generated_key(create=True) returns a key
        return self._granted_id(encryption.carrier(self.model, key))

    def export_encryption_key(self) -> dict[str, str]:
        """The generated key for the admin to keep (`export-encryption-key`); remembered."""
        config = self.setup.config
        on = config is not None and config.encryption
        key = encryption.to_export(self.model, on, self.setup.encryption_key)
        self.state.encryption_exported = key.fingerprint
        logger.info("the encryption key of fingerprint %s was exported", key.fingerprint)
        return encryption.export_result(key)

    def encryption_nag(self) -> str:
        """The status reminder while the generated key was not exported, else ''."""
        config = self.setup.config
        if config is None:
            return ""
        return encryption.nag(
            config.encryption,
            self.setup.encryption_key is not None or bool(self.setup.encryption_error),
            encryption.generated_key(self.model, create=False),
            self.state.encryption_exported,
        )

    # -- requests -----------------------------------------------------------------------

    def request_backup(
        self,
        relation: ops.Relation,
        *,
        kind: str,
        location: Location | None = None,
        databases: Sequence[str] = (),
        tables: Sequence[str] = (),
        description: str | None = None,
        scheduled: bool = False,
        catalogs: Catalogs | None = None,
    ) -> history.Record:
        """Ask `relation`'s application for a backup; return its history record."""
        ready = self.usable_setup()
        config = ready.config
        location = location or ready.backup_location
        app = app_name(relation)
        parent = None
        if kind == "incremental":
            catalogs = catalogs or self.catalogs()
            newest = catalogs.newest(app, location)
            if newest is None:
                if not scheduled:
                    raise ManagerError(
                        f"{app} has no complete physical backup in location "
                        f"{location.name!r} for an incremental to build on: create a full "
                        "backup first (kind=full)"
                    )
                logger.info("no parent for a scheduled incremental of %s: taking a full", app)
                kind = "full"
            else:
                parent = newest.backup_id
        if (databases or tables) and kind != "logical":
            raise ManagerError("databases and tables only apply to kind=logical backups")
        job_id = self._submit(
            lambda: self.backups.request_backup(
                relation,
                location.storage_config(self.credentials_secret_id(location)),
                kind=BackupKind(kind),
                compression=config.compression,
                compression_level=config.compression_level if config.compression else None,
                parent_backup_id=parent,
                databases=list(databases) or None,
                tables=list(tables) or None,
                encryption_secret_id=self.encryption_secret_id(),
                description=description,
            )
        )
        return self._remember(relation, job_id, location, scheduled=scheduled)

    def request_restore(
        self,
        relation: ops.Relation,
        *,
        location: Location,
        backup_id: str,
        encrypted: bool,
        compressed: bool,
        point_in_time: str | None,
        catalogs: Catalogs,
        databases: Sequence[str] = (),
        tables: Sequence[str] = (),
        key_fingerprint: str | None = None,
        source: str = "",
    ) -> history.Record:
        """Ask for a restore of `backup_id` (and replay to `point_in_time`, if given).

        With `source` (another cluster's id), a clone: the artefact path names that
        cluster's prefix, and the provider reads there but writes under its own.

        An encrypted backup is restored with the key of its recorded fingerprint (the
        admin's or the generated one); a backup whose key this manager lacks is refused
        before any job is sent.
        """
        app = app_name(relation)
        encryption_id = self._key_of(backup_id, encrypted, key_fingerprint)
        job_id = self._submit(
            lambda: self.backups.request_restore(
                relation,
                location.storage_config(self.credentials_secret_id(location)),
                artefact_path=catalogs.artefact_path(source or app, location, backup_id),
                backup_id=backup_id,
                point_in_time=point_in_time,
                compression=compressed,
                databases=list(databases) or None,
                tables=list(tables) or None,
                encryption_secret_id=encryption_id,
            )
        )
        return self._remember(relation, job_id, location)

    def _key_of(self, backup_id: str, encrypted: bool, fingerprint: str | None) -> str | None:
        """Id of the (granted) secret with the key `backup_id` was encrypted with, if it was."""
        if not encrypted:
            return None
        keys = [self._admin_key(), encryption.generated_key(self.model, create=False)]
        key = encryption.for_backup(fingerprint, [k for k in keys if k], backup_id)
        return self._granted_id(encryption.carrier(self.model, key))

    def request_drill(
        self,
        relation: ops.Relation,
        *,
        location: Location,
        backup: BackupMetadata,
        point_in_time: str | None = None,
        scheduled: bool = False,
    ) -> history.Record:
        """Ask for a restore drill of `backup` (C1: a `backup` job with `verify-backup-id`)."""
        job = JobRequest(
            job_id=f"{drills.TYPE}-{format_id_stamp(utc_now())}-{secrets.token_hex(3)}",
            job_type=JobType.BACKUP,
            storage=location.storage_config(self.credentials_secret_id(location)),
            compression=backup.compression != "none",
            point_in_time=point_in_time,
            encryption_secret_id=self._key_of(
                backup.backup_id, backup.encrypted, backup.key_fingerprint
            ),
            requested_at=format_time(utc_now()),
            verify_backup_id=backup.backup_id,
        )
        self._submit(lambda: self.backups.submit(relation, job))
        return self._remember(relation, job.job_id, location, scheduled=scheduled)

    def _submit(self, request: Callable[[], str]) -> str:
        try:
            return request()
        except DatabaseBackupError as exc:
            raise ManagerError(f"the job could not be requested: {exc}") from None

    def _remember(
        self, relation: ops.Relation, job_id: str, location: Location, *, scheduled: bool = False
    ) -> history.Record:
        job = next(j for j in self.backups.requests(relation) if j.job_id == job_id)
        app = app_name(relation)
        record = drills.from_request(job, app, location.name, scheduled=scheduled)
        records = self.state.history()
        records.append(record)
        self.state.save_history(records)
        joblines.requested(record, self.cluster_id(relation))
        return record

    # -- reconcile ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Bring cron, secrets, relation data and history in line with config and relations."""
        setup = self.setup
        if setup.config is None:
            return
        self._write_cron(setup.config)
        if not self.is_leader:
            return
        self._seed_schedule(setup.config.schedule)
        drills.Ledger(self.model).seed(
            setup.config.drill_schedule, datetime.datetime.now().astimezone()
        )
        self.sync_history()
        self.collect_copies()
        self.collect_retention()
        ready = setup.ready
        if ready is None or not self.database_relations():
            return
        for location in ready.locations.values():
            self.credentials_secret_id(location)
        self._publish(ready)
        self.retry_refused_backups()

    def _seed_schedule(self, wanted: schedule.Schedule) -> None:
        """Seed the last slot when scheduling starts or changes: no catch-up of older slots."""
        key = f"{wanted.main}|{wanted.main_kind}|{wanted.full}" if wanted.enabled else None
        state = self.state
        if key == state.schedule and (key is None or state.last_slot is not None):
            return
        state.schedule = key
        state.last_slot = datetime.datetime.now().astimezone() if key else None

    def remove_cron(self) -> None:
        """The unit is going away: no more scheduled dispatches to it."""
        self._write_cron(None)

    def update_exporter(self) -> None:
        """Rewrite the metrics exporter's state file and keep its service running."""
        exporter_hooks.update(self)

    def remove_exporter(self) -> None:
        """The unit is going away: stop and remove the metrics exporter."""
        exporter_hooks.remove()

    def _write_cron(self, config: ManagerConfig | None) -> None:
        wanted, drill = schedule.Schedule(""), ""
        if config is not None and self.is_leader:
            wanted, drill = config.schedule, config.drill_schedule
        unit = self.model.unit.name
        try:
            schedule.write_cron(wanted, unit, self.charm.charm_dir, drill)
        except OSError as exc:
            logger.error("cannot write the cron file %s: %s", schedule.cron_file(unit), exc)

    def _publish(self, setup: setup_mod.Ready) -> None:
        location = setup.backup_location
        storage = location.storage_config(self.credentials_secret_id(location))
        try:
            encryption_id = self.encryption_secret_id()
        except ManagerError as exc:  # the admin's key is unusable: the status says why
            logger.error("binlog shipping not published: %s", exc)
            return
        for relation in self.database_relations():
            self.backups.set_cluster_id(relation, self.cluster_id(relation))
            if not setup.config.binlog_shipping:
                self.backups.set_log_shipping(relation, {"enabled": False})
                continue
            request = {
                "enabled": True,
                "storage-interface": "s3",
                "storage-config": storage.to_dict(),
                "compression": setup.config.compression,
                "max-lag-seconds": setup.config.binlog_max_lag,
            }
            if encryption_id:
                request["encryption-secret-id"] = encryption_id
            self.backups.set_log_shipping(relation, request)

    def sync_history(self) -> list[history.Record]:
        """Fold the providers' latest statuses into the history (leader)."""
        records = self.state.history()
        changed = False
        for relation in self.database_relations():
            app = app_name(relation)
            for tracked in self.backups.jobs(relation):
                record = history.find(records, tracked.request.job_id)
                if record is None:
                    record = drills.from_request(
                        tracked.request, app, self._location_of(tracked.request.storage.bucket)
                    )
                    records.append(record)
                    changed = True
                if tracked.status is not None:
                    before = record.status
                    changed = drills.apply_status(record, tracked.status) or changed
                    if self.is_leader:
                        secrets = joblines.location_secrets(self.setup.locations.values())
                        joblines.concluded(record, self.cluster_id(relation), before, secrets)
                    if before != "success":
                        self._note_backup(record)
        if changed:
            self.state.save_history(records)
            drills.Ledger(self.model).update(records)
        return records

    def _note_backup(self, record: history.Record) -> None:
        """A backup that just succeeded counts in the summary of the backups in storage."""
        if record.type != "backup" or record.status != "success":
            return
        if not record.backup_id:
            return
        location = record.location or ""
        if not location and self.setup.backup_location is not None:
            location = self.setup.backup_location.name
        self.recorder.succeeded(record.app or "?", location, record.backup_id, record.finished_at)

    def retry_refused_backups(self) -> list[str]:
        """Request again, once, the scheduled backups refused while a restore ran (leader).

        Runs from reconcile (so from update-status, and as soon as the restore's end is
        seen); `history.backups_to_retry` says which, and the history links the two jobs.
        """
        if not self.is_leader:
            return []
        candidates = history.backups_to_retry(self.state.history())
        apps = set(self.apps())
        retried: list[str] = []
        for refused in candidates:
            app = refused.app or ""
            if app not in apps:
                continue
            location = self.setup.locations.get(refused.location or "")
            catalogs = self.catalogs()
            try:
                record = self.request_backup(
                    self.relation_for(app),
                    kind=refused.kind or "full",
                    location=location,
                    scheduled=True,
                    catalogs=catalogs,
                )
            except ManagerError as exc:
                logger.error("retrying backup %s not requested: %s", refused.job_id, exc)
                continue
            finally:
                catalogs.close()
            records = self.state.history()
            for item in records:
                if item.job_id == refused.job_id:
                    item.retried_by = record.job_id
                elif item.job_id == record.job_id:
                    item.retry_of = refused.job_id
            self.state.save_history(records)
            logger.info(
                "scheduled backup %s was refused during a restore: retried as %s",
                refused.job_id,
                record.job_id,
            )
            retried.append(record.job_id)
        return retried

    def _location_of(self, bucket: str) -> str:
        for location in self.setup.locations.values():
            if location.bucket == bucket:
                return location.name
        return ""

    def collect_copies(self) -> None:
        """Pick up the results of copies into the history (leader).

        From the local job where this unit started the copy, else from the destination
        storage (the copy was started by a previous leader).
        """
        running = self.state.copies()
        if not running:
            return
        records = self.state.history()
        catalogs = self.catalogs()
        try:
            results = copying.collect(copying.STATE_DIR, running, records, catalogs)
        finally:
            catalogs.close()
        if not results:
            return
        for result in results:
            record = history.find(records, result["copy-id"])
            running.pop(result["copy-id"], None)
            if record is None:
                continue
            history.apply_copy_result(record, result)
            logger.info(
                "copy %s: %s %s", result["copy-id"], result["status"], result.get("message", "")
            )
        self.state.save_history(records)
        self.state.save_copies(running)

    # -- schedule and retention ---------------------------------------------------------

    def run_schedule(self, now: datetime.datetime | None = None) -> list[str]:
        """Request the backups due now (scheduled event or update-status catch-up)."""
        setup = self.setup
        if not self.is_leader or setup.config is None or not setup.usable:
            return []
        now = now or datetime.datetime.now().astimezone()
        due = schedule.due_kind(setup.config.schedule, now, self.state.last_slot)
        if due is None:
            return []
        kind, slot = due
        job_ids: list[str] = []
        failed = False
        catalogs = self.catalogs()
        try:
            for relation in self.database_relations():
                try:
                    record = self.request_backup(
                        relation, kind=kind, scheduled=True, catalogs=catalogs
                    )
                except ManagerError as exc:
                    logger.error("scheduled %s backup not requested: %s", kind, exc)
                    failed = True
                    continue
                job_ids.append(record.job_id)
        finally:
            catalogs.close()
        if failed and not job_ids:
            return []  # nothing went out: the next update-status tries this slot again
        self.state.last_slot = slot
        logger.info("scheduled %s backups for slot %s: %s", kind, slot.isoformat(), job_ids)
        return job_ids

    def apply_retention(
        self,
        apps: Sequence[str],
        locations: Sequence[Location],
        *,
        reason: str,
        reindex: bool = False,
    ) -> history.Record | None:
        """Start retention over those clusters and locations in a worker (leader).

        The hook returns at once (no storage request); `collect_retention` records the
        outcome in a later hook. With `reindex`, each catalog index is rebuilt first.
        """
        config = self.setup.config
        if config is None or not self.is_leader or not apps or not locations:
            return None
        records = self.state.history()
        catalogs = self.catalogs()
        targets = [(app, catalogs.cluster_of(app), loc) for loc in locations for app in apps]
        record = retention_jobs.start(
            copying.STATE_DIR,
            targets,
            config.retention,
            history.protected_backups(records),
            reindex=reindex,
            reason=reason,
            now=utc_now(),
        )
        records.append(record)
        self.state.save_history(records)
        logger.info("retention %s started: %s", record.job_id, reason)
        return record

    def reindex(self, apps: Sequence[str], locations: Sequence[Location]) -> history.Record:
        """Start a rebuild of those clusters' catalog indexes in a worker (no deletion)."""
        if not apps:
            raise ManagerError(
                "no database application is related: name one with cluster=<model-uuid>/<app>"
            )
        catalogs = self.catalogs()
        targets = [(app, catalogs.cluster_of(app), loc) for loc in locations for app in apps]
        records = self.state.history()
        record = retention_jobs.start(
            copying.STATE_DIR,
            targets,
            self.usable_setup().config.retention,
            (),
            reindex=True,
            retain=False,
            reason="rebuilding the catalog index (reindex action)",
            now=utc_now(),
        )
        records.append(record)
        self.state.save_history(records)
        return record

    def collect_retention(self) -> None:
        """Record the outcome of retention runs that ended (leader, from reconcile).

        The summary of the backups in storage is refreshed from the index of each cluster
        a run went over (two requests each).
        """
        records = self.state.history()
        ended = retention_jobs.collect(copying.STATE_DIR, records, utc_now())
        if not ended:
            return
        self.state.save_history(records)
        touched = {target for run in ended for target in run.targets}
        apps = set(self.apps())
        catalogs = self.catalogs()
        try:
            for app, name in sorted(touched):
                location = self.setup.locations.get(name)
                if app not in apps or location is None:
                    continue
                try:
                    catalogs.view(app, location)  # the recording catalog updates the summary
                except ManagerError as exc:
                    logger.warning("backup summary of %s not refreshed: %s", app, exc)
        finally:
            catalogs.close()

    def daily_retention(self) -> history.Record | None:
        """Once a (UTC) day, from update-status: retention (and an index rebuild) everywhere."""
        today = utc_now().date().isoformat()
        if not self.is_leader or self.state.last_retention == today or not self.setup.usable:
            return None
        record = self.apply_retention(
            self.apps(),
            list(self.setup.locations.values()),
            reason="daily retention, with a rebuild of the catalog index",
            reindex=True,
        )
        self.state.last_retention = today
        return record

    def on_job_finished(self, relation: ops.Relation, status: JobStatus) -> None:
        """Record the outcome; after a successful backup, apply retention to its cluster."""
        records = self.sync_history()
        self.update_exporter()
        if status.job_type is None or status.job_type.value != "backup" or status.is_drill:
            return  # a drill (C1: a backup job) adds no backup: no retention to apply
        app = remote_app(relation)
        if status.status.value != "success" or app is None:
            return
        record = history.find(records, status.job_id)
        location = self.setup.locations.get(record.location or "" if record is not None else "")
        location = location or self.setup.backup_location
        if location is not None:
            self.apply_retention([app.name], [location], reason=f"after backup {status.job_id}")

    # -- status -------------------------------------------------------------------------

    def check_storage(self) -> None:
        """From update-status: can every location be reached with its credentials?"""
        if not self.is_leader or self.setup.config is None:
            return
        problems: dict[str, dict[str, str]] = {}
        catalogs = self.catalogs()
        try:
            for location in self.setup.locations.values():
                try:
                    catalogs.storage(location).check()
                except StorageError as exc:
                    logger.error("storage location %s: %s", location.name, exc)
                    problems[location.name] = {
                        "fingerprint": location.fingerprint,
                        "message": str(exc),
                    }
        finally:
            catalogs.close()
        self.state.storage_problems = problems

    def status(self) -> ops.StatusBase:
        """The unit's status: the first blocking reason, or a summary."""
        setup = self.setup
        records = self.state.history()
        problems = self.state.storage_problems
        apps = set(self.apps())
        stored = {key: s for key, s in self.recorder.summary().items() if s.app in apps}
        return status_mod.unit_status(
            setup,
            bool(self.database_relations()),
            records,
            problems,
            stored,
            nag=self.encryption_nag(),
            drill_failures=drills.Ledger(self.model).failures(apps),
        )
