"""Job runner: one job = one detached worker process running the engine's command line.

No `ops` imports: the worker imports this package too. A provider charm uses it like this::

    from database_backup.jobs import JobRecord, JobStore, dispatch_command, job_key, start_worker

    store = JobStore(Path("/var/lib/mysql-server/jobs"))
    record = JobRecord(
        key=job_key(str(relation.id), job.job_id),
        job_id=job.job_id,
        scope=str(relation.id),
        kind="full backup",
        command=("backup", "--backup-id", backup_id, "--job-id", job.job_id),
        notify=dispatch_command(unit, charm_dir),  # /usr/bin/juju-exec ... job-finished
    )
    local = store.create(record, spec)     # spec: the CLI's spec, secrets included (0600)
    start_worker(local)                    # returns at once; the worker takes the job's lock

    # later, in the job-finished or update-status hook:
    for local in store.jobs():
        if local.is_dead():
            local.mark_dead()              # every process of the job died: an error
        outcome = local.outcome()          # running (phase, bytes) or success/error

Where systemd is PID 1 the worker runs as a transient systemd unit, so it outlives the
Juju agent (an agent restart or `juju upgrade-model` kills the agent's whole cgroup);
elsewhere as a process in its own session. Both get the same clean environment.

The spec file and the engine's state file are `database_backup.contract.EngineSpec` and
`EngineState`: `store.create(record, spec.to_json())`; `outcome.engine_result()` and
`outcome.data_changed` read what the engine reported.

Modules: `store` (job directories, lock, state, outcome), `launch` (start the worker with
a clean environment, cancel), `systemd` (transient units), `handback` (the `juju-exec`
command), `worker` (the worker's entry point).
"""

from .handback import JUJU_EXEC, dispatch_command
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
    "JUJU_EXEC",
    "RUNNING",
    "SUCCESS",
    "JobRecord",
    "JobStore",
    "LocalJob",
    "Outcome",
    "cancel",
    "clean_env",
    "dispatch_command",
    "hook_python_path",
    "job_key",
    "now_text",
    "read_json",
    "start_worker",
    "worker_pid",
    "write_json",
]
