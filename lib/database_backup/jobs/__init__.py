"""Job runner: one job = one detached worker process running the engine's command line.

No `ops` imports: the worker imports this package too. A provider charm uses it like this::

    from database_backup.jobs import JobRecord, JobStore, job_key, start_worker

    store = JobStore(Path("/var/lib/mysql-server/jobs"))
    record = JobRecord(
        key=job_key(str(relation.id), job.job_id),
        job_id=job.job_id,
        scope=str(relation.id),
        kind="full backup",
        command=("backup", "--backup-id", backup_id, "--job-id", job.job_id),
        notify=("juju-exec", unit, f"JUJU_DISPATCH_PATH=hooks/job-finished {charm_dir}/dispatch"),
    )
    local = store.create(record, spec)     # spec: the CLI's spec, secrets included (0600)
    start_worker(local)                    # returns at once; the worker holds the job's lock

    # later, in the job-finished or update-status hook:
    for local in store.jobs():
        if local.is_dead():
            local.mark_dead()              # every process of the job died: an error
        outcome = local.outcome()          # running (phase, bytes) or success/error

Modules: `store` (job directories, lock, state, outcome), `launch` (start the worker in its
own session with a clean environment, cancel), `worker` (the worker's entry point).
"""

from .launch import cancel, clean_env, hook_python_path, start_worker, worker_pid
from .store import (
    ERROR,
    RUNNING,
    SUCCESS,
    JobRecord,
    JobStore,
    LocalJob,
    Outcome,
    job_key,
    now_text,
    read_json,
    write_json,
)

__all__ = [
    "ERROR",
    "RUNNING",
    "SUCCESS",
    "JobRecord",
    "JobStore",
    "LocalJob",
    "Outcome",
    "cancel",
    "clean_env",
    "hook_python_path",
    "job_key",
    "now_text",
    "read_json",
    "start_worker",
    "worker_pid",
    "write_json",
]
