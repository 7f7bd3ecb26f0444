"""The detached worker: run one job's engine command, record how it ended, report back.

Started by `launch.start_worker` as `python -m database_backup.jobs.worker <job-dir> [<lock-fd>]`:
as a transient systemd unit it gets no fd and takes the job's lock itself, first thing (a
second worker for the same job finds it held and exits with 2); as a detached process it
inherits the lock from the hook. It runs `python -m <engine> <command> --spec ...
--state-file ...` (the engine is `database_backup.cli` unless the job names another) as a
child that shares the job's lock, waits for it, makes sure the state says how the job
ended (an engine that crashed or was killed writes nothing), deletes the spec file (it
holds secrets), releases the lock and runs the job's `notify` command, e.g.
`/usr/bin/juju-exec <unit> "JUJU_DISPATCH_PATH=hooks/job-finished <charm-dir>/dispatch"`,
so the charm publishes the result at once; its output goes to the job's log. It writes the
job's start and end (or error) lines (`database_backup.joblog`) to that log and to the job
log file under /var/log (the record's `job-log` label, else the library's default; none
when the label is null). SIGTERM is
passed on to the engine, which cleans up (a backup deletes its partial artefact, a restore
puts the previous data back).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from database_backup.joblog import JobLog

from .store import (
    ERROR,
    FINISHED_FILE,
    JOB_FILE,
    LOCK_FILE,
    SUCCESS,
    JobRecord,
    LocalJob,
    read_json,
)

logger = logging.getLogger("database_backup.jobs.worker")

NOTIFY_TIMEOUT = 300.0
EXIT_CODES = {0: "success", 1: "the operation failed", 2: "bad arguments or spec"}


def engine_argv(job: LocalJob, python: str = sys.executable) -> list[str]:
    """The engine CLI's command line for `job` (no secrets: they are in the spec file)."""
    return [
        python,
        "-m",
        job.record.engine,
        *job.record.command,
        "--spec",
        str(job.spec_path),
        "--state-file",
        str(job.state_path),
    ]


def _last_error_line(job: LocalJob) -> str:
    try:
        with open(job.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "error" in line.lower():
            return line.strip()[:500]
    return ""


def conclude(job: LocalJob, returncode: int) -> str:
    """Record the end of the job from the engine's state and exit code; return the status."""
    state = job.engine_state()
    if returncode == 0 and state.status == SUCCESS:
        job.finish(SUCCESS, None, exit_code=0)
        return SUCCESS
    message = state.message if state.status == ERROR else None
    if not message:
        if returncode < 0:
            name = signal.Signals(-returncode).name
            message = f"the engine was stopped by {name} during phase {state.phase!r}"
        elif returncode == 0:
            message = "the engine exited without recording a result; see the job's log"
        else:
            what = EXIT_CODES.get(returncode, f"exit code {returncode}")
            detail = _last_error_line(job)
            message = f"the engine failed ({what})" + (f": {detail}" if detail else "")
    job.finish(ERROR, message, exit_code=returncode)
    return ERROR


def notify(record: JobRecord) -> None:
    """Run the job's notify command (failures are logged: update-status catches up)."""
    if not record.notify:
        return
    cwd = record.notify_cwd if record.notify_cwd and os.path.isdir(record.notify_cwd) else None
    logger.info("handing back: %s", " ".join(record.notify))
    sys.stdout.flush()
    sys.stderr.flush()
    try:  # its output goes to the job's log, like the worker's
        result = subprocess.run(
            list(record.notify),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sys.stdout,
            stderr=sys.stderr,
            timeout=NOTIFY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("could not notify the charm (%s); update-status will report", exc)
        return
    if result.returncode != 0:
        logger.warning("notify exited with %d; update-status will report", result.returncode)


def take_lock(job_dir: Path) -> int | None:
    """Lock the job (a transient unit's worker does, first thing); None if already held."""
    fd = os.open(job_dir / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    (job_dir / "worker.pid").write_text(f"{os.getpid()}\n")
    return fd


def run(job_dir: Path, lock_fd: int) -> int:
    """Run the job in `job_dir` to its end; return the worker's exit code."""
    data = read_json(job_dir / JOB_FILE)
    if data is None:
        logger.error("no readable %s in %s", JOB_FILE, job_dir)
        return 2
    job = LocalJob(job_dir, JobRecord.from_dict(data))
    if (job_dir / FINISHED_FILE).exists():
        logger.error("job %s has already finished", job.record.key)
        return 2
    logger.info("job %s (%s): starting the engine", job.record.job_id, job.record.kind)
    record = job.record
    lines = JobLog.for_job(record.job_id, record.kind, record.labels, read_json(job.spec_path))
    if lines is not None:
        lines.started()
    child = subprocess.Popen(
        engine_argv(job),
        stdin=subprocess.DEVNULL,
        stdout=sys.stdout,
        stderr=sys.stderr,
        pass_fds=(lock_fd,),
        cwd=str(job_dir),
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        logger.info("passing %s on to the engine", signal.Signals(signum).name)
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    returncode = child.wait()
    status = conclude(job, returncode)
    logger.info("job %s ended: %s (exit code %d)", job.record.job_id, status, returncode)
    if lines is not None:
        lines.ended(status == SUCCESS, job.outcome().message)
    os.close(lock_fd)
    notify(job.record)
    return 0 if status == SUCCESS else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `python -m database_backup.jobs.worker <job-dir> [<lock-fd>]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s worker: %(message)s")
    if len(args) not in (1, 2) or (len(args) == 2 and not args[1].isdigit()):
        logger.error("usage: python -m database_backup.jobs.worker <job-dir> [<lock-fd>]")
        return 2
    job_dir = Path(args[0])
    if len(args) == 2:
        return run(job_dir, int(args[1]))
    try:
        lock_fd = take_lock(job_dir)
    except OSError as exc:
        logger.error("cannot lock the job in %s: %s", job_dir, exc)
        return 2
    if lock_fd is None:
        logger.error(
            "the job in %s already runs (its lock is held): not starting it twice", job_dir
        )
        return 2
    return run(job_dir, lock_fd)


if __name__ == "__main__":
    sys.exit(main())
