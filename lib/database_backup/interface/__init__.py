"""The `database_backup` relation library (interface v0).

A backup manager (the requirer) asks a database application (the provider) for backup and
restore jobs; each job is run by exactly one provider unit, which reports its status.
Everything written or read is validated with the interface's JSON schemas.

Requirer (a backup manager charm)::

    import ops
    from database_backup.interface import DatabaseBackupRequirer, StorageConfig

    class ManagerCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            self.backups = DatabaseBackupRequirer(self, "database-backup")
            framework.observe(self.backups.on.job_succeeded, self._on_job_done)
            framework.observe(self.on.create_backup_action, self._on_create_backup)

        def _on_create_backup(self, event: ops.ActionEvent) -> None:
            relation = self.backups.relations[0]
            storage = StorageConfig(bucket="backups", credentials_secret_id=self._secret_id)
            job_id = self.backups.request_backup(relation, storage)
            event.set_results({"job-id": job_id})

Provider (a database charm)::

    from database_backup.interface import DatabaseBackupProvider, JobState, JobStatus

    class DatabaseCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            self.backups = DatabaseBackupProvider(
                self, "database-backup", peer_relation_name="database-peers"
            )
            framework.observe(self.backups.on.job_requested, self._on_job_requested)

        def _on_job_requested(self, event) -> None:
            decision = may_start(self.backups.running_work(), work_of(event.job))
            if not decision.allowed:
                status = JobStatus.for_request(event.job, JobState.ERROR, message=decision.reason)
            else:
                start_worker(event.job, self.backups.credentials_for(event.job))
                status = JobStatus.for_request(event.job, JobState.RUNNING, phase="starting")
            self.backups.publish_status(event.relation, status)

Every job runs on the provider leader (or the unit `primary=` returns). Pass
`replicas=` (a callable returning unit names) only when the units replicate one server:
backups then go to a replica. Without it the units are taken for independent servers.

The library never sets unit or application status: it returns values or raises.
"""

from .assignment import choose_unit
from .codec import DecodedRequests, DecodedStatuses, Problem, decode_requests, decode_statuses
from .errors import (
    DatabaseBackupError,
    DataValidationError,
    NotLeaderError,
    SecretUnavailableError,
    TooManyJobsError,
)
from .events import (
    DatabaseBackupProviderEvents,
    DatabaseBackupRequirerEvents,
    JobFailedEvent,
    JobRequestedEvent,
    JobStartedEvent,
    JobStatusEvent,
    JobSucceededEvent,
)
from .locking import RESTORING_MESSAGE, Decision, Work, WorkKind, may_start, work_of
from .model import (
    LATEST,
    BackupKind,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    Verification,
    format_time,
    parse_time,
    utc_now,
)
from .provider import Assignment, Credentials, DatabaseBackupProvider
from .remote import remote_app
from .requirer import DEFAULT_ENDPOINT, DatabaseBackupRequirer, TrackedJob, new_job_id

__all__ = [
    "DEFAULT_ENDPOINT",
    "LATEST",
    "RESTORING_MESSAGE",
    "Assignment",
    "BackupKind",
    "Credentials",
    "DataValidationError",
    "DatabaseBackupError",
    "DatabaseBackupProvider",
    "DatabaseBackupProviderEvents",
    "DatabaseBackupRequirer",
    "DatabaseBackupRequirerEvents",
    "Decision",
    "DecodedRequests",
    "DecodedStatuses",
    "JobFailedEvent",
    "JobRequest",
    "JobRequestedEvent",
    "JobStartedEvent",
    "JobState",
    "JobStatus",
    "JobStatusEvent",
    "JobSucceededEvent",
    "JobType",
    "NotLeaderError",
    "Problem",
    "SecretUnavailableError",
    "StorageConfig",
    "TooManyJobsError",
    "TrackedJob",
    "Verification",
    "Work",
    "WorkKind",
    "choose_unit",
    "decode_requests",
    "decode_statuses",
    "format_time",
    "may_start",
    "new_job_id",
    "parse_time",
    "remote_app",
    "utc_now",
    "work_of",
]
