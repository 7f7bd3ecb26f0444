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
    drills,
    encryption,
    history,
    history_sync,
    joblines,
    retention_runs,
    schedule,
)
from . import setup as setup_mod
from . import status as status_mod
from .catalogs import Catalogs
from .config import ManagerConfig
from .errors import ManagerError
from .exporter import hooks as exporter_hooks
from .locations import Location
from .relations import app_name
from .state import PeerState

logger = logging.getLogger(__name__)

FOLLOW = "juju run backup-manager/leader list-jobs"


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
        history_sync.collect_copies(self)
        retention_runs.collect(self)
        ready = setup.ready
        if ready is None or not self.database_relations():
            return
        for location in ready.locations.values():
            self.credentials_secret_id(location)
        self._publish(ready)
        history_sync.retry_refused(self)

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
        return history_sync.sync(self)

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

    def reindex(self, apps: Sequence[str], locations: Sequence[Location]) -> history.Record:
        """Start a rebuild of those clusters' catalog indexes in a worker (no deletion)."""
        return retention_runs.start_reindex(self, apps, locations)

    def daily_retention(self) -> history.Record | None:
        """Once a (UTC) day, from update-status: retention (and an index rebuild) everywhere."""
        return retention_runs.daily(self)

    def on_job_finished(self, relation: ops.Relation, status: JobStatus) -> None:
        """Record the outcome; after a successful backup, apply retention to its cluster."""
        records = self.sync_history()
        self.update_exporter()
        retention_runs.after_job(self, relation, status, records)

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
