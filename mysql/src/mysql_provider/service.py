"""What the mysql-server charm does, event by event; `charm.py` only wires events to this.

The server itself lives in `workload` (no ops), jobs in `runner`, binlog shipping in
`shipping`. Status is decided in one place (`unit_status`), from what is true now.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ops
import pydantic

from database_backup.contract import EngineSpec
from database_backup.interface import (
    DatabaseBackupProvider,
    DataValidationError,
    JobRequestedEvent,
    JobState,
    JobType,
    SecretUnavailableError,
    StorageConfig,
    WorkKind,
)
from database_backup.jobs import cancel

from . import params, specs
from .actions import bounded_rows, clip
from .config import CharmConfig, describe
from .installation import Installation
from .runner import JobRunner
from .shipping import (
    DEFAULT_INTERVAL,
    DEFAULT_MAX_LAG,
    ShippingPlan,
    shipping_cadence,
    status_document,
)
from .workload import Server, WorkloadError, backup_user_sql

logger = logging.getLogger(__name__)
_Params = TypeVar("_Params", bound=pydantic.BaseModel)

PASSWORD_LABEL = "backup-user"  # noqa: S105 - a secret label, not a password
LOG_SHIPPING_KEY = "log-shipping"
#: where Juju puts juju-exec on a machine; a detached worker's PATH need not include it
JUJU_EXEC = Path("/usr/bin/juju-exec")
ONE_UNIT = (
    "{app} runs one unit: this unit's server is not replicated; remove it "
    "(juju remove-unit {unit})"
)
NOT_LEADER_JOB = (
    "{unit} is not the leader and runs no jobs: {app} runs one unit (its server is not "
    "replicated); remove this unit (juju remove-unit {unit})"
)


def juju_exec_command(unit: str, charm_dir: Path) -> list[str] | None:
    """The worker's hand-back: dispatch `job-finished` on this unit (None without juju-exec)."""
    if not JUJU_EXEC.exists():
        return None
    dispatch = f"JUJU_DISPATCH_PATH=hooks/job-finished {charm_dir}/dispatch"
    return [str(JUJU_EXEC), unit, dispatch]


class ProviderService:
    """The provider unit: server, jobs, shipping, status and actions."""

    def __init__(
        self,
        charm: ops.CharmBase,
        provider: DatabaseBackupProvider,
        *,
        server_factory: Callable[[str], Server],
        notify: Callable[[str, Path], list[str] | None],
    ) -> None:
        self.charm = charm
        self.provider = provider
        self.config: CharmConfig | None = None
        self.config_error = ""
        try:
            self.config = charm.load_config(CharmConfig)
        except pydantic.ValidationError as exc:
            self.config_error = describe(exc)
        self.server = server_factory(self.config.flavour if self.config else "mariadb")
        live = (str(self.server.server_section()["datadir"]), str(self.server.binlog_dir))
        self.drill_error = self.config.drill_problem(live) if self.config else ""
        self.installation = Installation(self.server)
        self._tools_problem: str | None = None
        self.runner = JobRunner(
            charm, provider, self.server, notify=lambda unit: notify(unit, charm.charm_dir)
        )
        self.shipper = self.server.shipper()

    # -- server ---------------------------------------------------------------------------

    def configure(self) -> None:
        """Install unless done (a failed install is retried), then set the server up.

        Writes the server's options, (re)starts it and creates the backup user.
        """
        if self.config is None or self.installation.ensure():
            return
        if self.runner.live_server_jobs():
            logger.info("jobs run: the server configuration waits until they have ended")
            return
        try:
            changed = self.server.configure(
                server_id=int(self.charm.unit.name.rsplit("/", 1)[1]) + 1,
                binlog_days=self.config.binlog_retention_days,
            )
            if changed or not self.server.is_running():
                self.server.restart()
            self._ensure_backup_user(self.password(create=True) or "")
        except WorkloadError as exc:
            logger.error("%s", exc)

    def _ensure_backup_user(self, password: str) -> None:
        """Create or update the backup user when needed, not on every update-status.

        Each change is binlogged, so only: the first time, a new password or new grants,
        and after a restore (the restored `mysql` schema may hold another password, or no
        such user).
        """
        restores = [
            job.record.key
            for job in self.runner.store.jobs()
            if job.record.kind == WorkKind.RESTORE.value and job.finished_record() is not None
        ]
        wanted = backup_user_sql(self.server.flavour.name, password) + "|".join(restores)
        digest = hashlib.sha256(wanted.encode()).hexdigest()
        marker = self.server.state_dir / "backup-user.sha256"
        if marker.exists() and marker.read_text().strip() == digest:
            return
        self.server.ensure_backup_user(password)
        self.server.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker.write_text(digest + "\n")

    def password(self, *, create: bool = False) -> str | None:
        """The backup user's password, from the unit's own Juju secret."""
        try:
            content = self.charm.model.get_secret(label=PASSWORD_LABEL).get_content(refresh=True)
            return content.get("password")
        except ops.SecretNotFoundError:
            if not create:
                return None
        value = secrets.token_urlsafe(24)
        self.charm.unit.add_secret(
            {"password": value}, label=PASSWORD_LABEL, description="mysql backup user"
        )
        return value

    def setup_problem(self) -> str:
        """Why the packages cannot serve backups: install failed, or unusable tool pair."""
        problem = self.installation.problem()
        if problem:
            return problem
        if self._tools_problem is None:  # once per hook: two `--version` calls
            self._tools_problem = self.server.check_tools()
            if self._tools_problem:
                logger.error("backup tool check: %s", self._tools_problem)
        return self._tools_problem

    def one_unit_problem(self) -> str:
        """The refusal of a non-leader unit ("" on the leader)."""
        if self.charm.unit.is_leader():
            return ""
        return ONE_UNIT.format(app=self.charm.app.name, unit=self.charm.unit.name)

    def not_ready(self) -> str:
        """Why this unit cannot run jobs now ("" when it can)."""
        if self.config is None:
            return f"invalid config: {self.config_error}"
        setup = self.setup_problem()
        if setup:
            return setup
        if not self.server.is_installed():
            return f"{self.server.flavour.name} is not installed"
        if not self.server.is_running():
            return f"the {self.server.flavour.service} service is not running"
        if self.password() is None:
            return "the backup user is not created yet"
        return ""

    # -- jobs -----------------------------------------------------------------------------

    def on_job_requested(self, event: JobRequestedEvent) -> None:
        """Start the job (or refuse it) and publish its first status at once."""
        job = event.job
        if not self.charm.unit.is_leader():  # the library gives every job to the leader
            unit, app = self.charm.unit.name, self.charm.app.name
            message = NOT_LEADER_JOB.format(unit=unit, app=app)
            logger.error("job %s refused: %s", job.job_id, message)
            self.runner.publish(event.relation, self.runner.refusal(job, message))
            return
        if job.is_drill and self.drill_error:
            logger.error("job %s refused: %s", job.job_id, self.drill_error)
            self.runner.publish(event.relation, self.runner.refusal(job, self.drill_error))
            return
        status = self.runner.start(
            event.relation,
            job,
            password=self.password(),
            not_ready=self.not_ready(),
            drill=self.drill_place(),
            table_sums_budget=self.config.table_sums_budget if self.config else None,
        )
        self.runner.publish(event.relation, status)
        logger.info("job %s: %s %s", job.job_id, status.status.value, status.message or "")
        if job.job_type is JobType.RESTORE and status.status is JobState.RUNNING:
            self.reconcile_shipping()  # shipping pauses during a restore

    def drill_place(self) -> specs.DrillPlace | None:
        """Where drills build their scratch servers (None when the config says nothing usable)."""
        if self.config is None or self.drill_error:
            return None
        return specs.DrillPlace(
            scratch_root=self.config.drill_directory,
            min_free_bytes=self.config.drill_min_free_bytes,
            unit=self.charm.unit.name,
        )

    def sync(self) -> None:
        """Publish local jobs' progress and results; resume shipping after a restore."""
        self.runner.sync()
        self.reconcile_shipping()

    # -- binlog shipping ------------------------------------------------------------------

    def reconcile_shipping(self) -> None:
        """Run shipping when the requirer asks for it and this unit should; report its state."""
        found = [(r, self.provider.log_shipping_request(r)) for r in self.provider.relations]
        asked = [(relation, request) for relation, request in found if request]
        relation, request = asked[0] if asked else (None, None)
        enabled = bool(request and request.get("enabled"))
        reason, spec = "", None
        if not enabled:
            reason = "not requested"
        elif not self.charm.unit.is_leader():
            reason = "the leader unit ships the binlogs"
        elif self.runner.restore_running() is not None:
            reason = "paused while the database is restored"
        else:
            reason = self.not_ready()
        if enabled and not reason and relation is not None and request is not None:
            try:
                spec = self._shipping_spec(relation, request)
            except (SecretUnavailableError, specs.JobSpecError) as exc:
                reason = str(exc)
        asked_interval = (request or {}).get("interval-seconds")
        asked_lag = (request or {}).get("max-lag-seconds")
        period, rotate_after = shipping_cadence(
            asked_lag if isinstance(asked_lag, int) else DEFAULT_MAX_LAG,
            asked_interval if isinstance(asked_interval, int) else DEFAULT_INTERVAL,
        )
        running = self.shipper.apply(ShippingPlan(spec, period, reason, rotate_after))
        if relation is None:
            return
        document = status_document(enabled, running, self.shipper.position(), reason)
        try:
            self.provider.publish_log_shipping(relation, document)
        except DataValidationError as exc:
            logger.error("log-shipping status not published: %s", exc)

    def _shipping_spec(self, relation: ops.Relation, request: dict[str, Any]) -> EngineSpec:
        storage = StorageConfig.from_dict(request.get("storage-config") or {})
        credentials = self.provider.credentials_for_storage(storage)
        return specs.shipping_spec(
            cluster_id=self.runner.cluster_id(relation),
            storage_config=storage,
            credentials=(credentials.access_key, credentials.secret_key),
            encryption_key=self.provider.encryption_key(request.get("encryption-secret-id")),
            backup_connection=self.server.backup_connection(self.password() or ""),
            workdir=str(self.server.state_dir / "work"),
        )

    def stop_shipping(self) -> None:
        """The unit goes away: stop the timer."""
        self.shipper.stop()

    # -- status ---------------------------------------------------------------------------

    def unit_status(self) -> ops.StatusBase:
        """The one place that decides the unit's status."""
        if self.config is None:
            return ops.BlockedStatus(f"invalid config: {self.config_error}")
        restore = self.runner.restore_running()
        if restore is not None:
            outcome = restore.outcome()
            progress = ""
            if outcome.bytes_done is not None and outcome.bytes_estimated:
                progress = f", {min(100, 100 * outcome.bytes_done // outcome.bytes_estimated)}%"
            backup = restore.record.labels.get("backup-id")
            return ops.MaintenanceStatus(
                f"restoring backup {backup}: {outcome.phase or 'starting'}{progress}"
            )
        one_unit = self.one_unit_problem()
        if one_unit:
            return ops.BlockedStatus(one_unit)
        if self.drill_error:
            return ops.BlockedStatus(f"invalid config: {self.drill_error}")
        setup = self.setup_problem()
        if setup:
            return ops.BlockedStatus(setup)
        reason = self.not_ready()
        if reason:
            if "backup user" in reason:
                return ops.WaitingStatus(reason)
            return ops.BlockedStatus(f"{reason}; see juju debug-log (retried on update-status)")
        running = len(self.runner.store.running())
        parts = [f"{running} job(s) running"] if running else []
        if self.shipper.is_enabled():
            timeline = self.shipper.position().get("timeline")
            parts.append(
                f"shipping binlogs (timeline {timeline})" if timeline else "shipping binlogs"
            )
        return ops.ActiveStatus("; ".join(parts))

    # -- actions --------------------------------------------------------------------------

    def run_action(self, event: ops.ActionEvent) -> None:
        """Run the action `event` is for."""
        handlers = {
            "show_jobs_action": self.show_jobs,
            "shipping_status_action": self.shipping_status,
            "cancel_job_action": self.cancel_job,
        }
        handler = handlers.get(event.handle.kind)
        if handler is None:
            event.fail(f"unknown action {event.handle.kind}")
            return
        handler(event)

    @staticmethod
    def _params(event: ops.ActionEvent, model: type[_Params]) -> _Params | None:
        """The action's parameters as `model`; None after failing the action with why."""
        try:
            return event.load_params(model)
        except pydantic.ValidationError as exc:
            event.fail(params.describe(exc))
            return None

    def show_jobs(self, event: ops.ActionEvent) -> None:
        """Action `show-jobs`: the newest `limit` jobs, within one action value's size."""
        given = self._params(event, params.ShowJobs)
        if given is None:
            return
        jobs = self.runner.store.jobs()
        rows: list[dict[str, Any]] = []
        for local in jobs[-given.limit :]:
            status = self.runner.status_of(local).to_dict()
            keep = ("job-id", "job-type", "status", "phase", "progress", "message", "backup-id")
            row = {key: status[key] for key in keep if key in status}
            if "verify-backup-id" in status:  # a drill: the backup it checks, and the verdict
                row["verify-backup-id"] = status["verify-backup-id"]
                row["verification"] = status.get("verification", {}).get("result")
            row.update(started=status.get("started-at"), finished=status.get("finished-at"))
            rows.append({k: v for k, v in row.items() if v is not None})
        text, note = bounded_rows(rows, total=len(jobs))
        event.set_results({"count": len(jobs), "jobs": text, **({"note": note} if note else {})})

    def shipping_status(self, event: ops.ActionEvent) -> None:
        """Action `shipping-status`."""
        position = {key: clip(value) for key, value in self.shipper.position().items()}
        event.set_results({"running": self.shipper.is_enabled(), **position})

    def cancel_job(self, event: ops.ActionEvent) -> None:
        """Action `cancel-job`."""
        given = self._params(event, params.CancelJob)
        if given is None:
            return
        job_id = given.job_id
        found = [job for job in self.runner.store.running() if job.record.job_id == job_id]
        if not found:
            shown = clip(repr(job_id))
            event.fail(f"no job {shown} runs on {self.charm.unit.name} (see show-jobs)")
            return
        if not cancel(found[0]):
            event.fail(f"job {job_id!r} has no live worker; update-status will report it")
            return
        event.set_results({"job-id": job_id, "result": "stop requested"})
