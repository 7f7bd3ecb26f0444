"""Start a job's worker outside the hook: clean environment, no terminal, own lifetime.

The hook that starts a job returns within seconds; the worker (`database_backup.jobs.worker`)
runs the engine's command line, keeps the job's lock, and reports back when it ends.

Where systemd is PID 1 the worker is a transient systemd unit (see `systemd`): it leaves
the Juju agent's cgroup, so an agent restart or a model upgrade does not kill it. Elsewhere
(containers without systemd, tests) it is a process in its own session, handed the job's
lock. Either way it gets only `clean_env()`: no JUJU_* hook context, no proxies, no secret.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import systemd as systemd_mod
from .store import ERROR, WORKER_FILE, LocalJob, now_text, write_json

#: the only variables a worker gets: no JUJU_* hook context, no proxies, no secrets
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKER_MODULE = "database_backup.jobs.worker"
START_TIMEOUT = 60.0

Popen = Callable[..., Any]


def clean_env(python_path: Iterable[str] = ()) -> dict[str, str]:
    """The worker's whole environment: PATH, locale, and where its Python packages are."""
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/root"}
    entries = [entry for entry in python_path if entry and os.path.isdir(entry)]
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))
    return env


def hook_python_path() -> list[str]:
    """The import path of the running hook, so the worker finds the same packages."""
    return [entry for entry in sys.path if entry and os.path.isdir(entry)]


def start_worker(
    job: LocalJob,
    *,
    python: str = sys.executable,
    python_path: Sequence[str] | None = None,
    popen: Popen = subprocess.Popen,
    systemd: bool | None = None,
    run: systemd_mod.Run = subprocess.run,
    owner: str | None = None,
) -> int:
    """Start the worker for `job` and return its pid (0 if systemd did not tell it).

    Args:
        job: the job, as `JobStore.create` made it.
        python: the interpreter the worker runs with.
        python_path: the worker's import path (default: the hook's).
        popen: starts the detached process (no systemd).
        systemd: run as a transient systemd unit; default: where systemd is PID 1.
        run: runs `systemd-run` and `systemctl`.
        owner: the Juju unit starting it (default: `JUJU_UNIT_NAME`), for the unit's name.

    Raises:
        OSError: the worker could not be started (the job is then recorded as failed).
    """
    env = clean_env(hook_python_path() if python_path is None else python_path)
    argv = [python, "-m", WORKER_MODULE, str(job.dir)]
    _create_log(job)
    if systemd_mod.booted() if systemd is None else systemd:
        unit_owner = os.environ.get("JUJU_UNIT_NAME", "") if owner is None else owner
        return _start_unit(job, argv, env, run, unit_owner)
    return _start_process(job, argv, env, popen)


def _create_log(job: LocalJob) -> None:
    """The log exists (0600) before anything appends to it."""
    fd = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _failed(job: LocalJob, reason: str) -> OSError:
    job.finish(ERROR, f"could not start the job's worker: {reason}")
    return OSError(reason)


def _start_unit(
    job: LocalJob, argv: list[str], env: dict[str, str], run: systemd_mod.Run, owner: str
) -> int:
    """Start the worker as a transient unit; it takes the job's lock itself."""
    unit = systemd_mod.unit_name(job.record.key, owner=owner, where=job.dir)
    write_json(job.dir / WORKER_FILE, {"mode": "systemd", "unit": unit, "started-at": now_text()})
    command = systemd_mod.run_argv(
        unit,
        argv,
        env=env,
        cwd=job.dir,
        log=job.log_path,
        description=f"database-backup job {job.record.job_id} ({job.record.kind})",
    )
    try:
        result = run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _failed(job, f"systemd-run: {exc}") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout or "").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise _failed(job, f"systemd-run: {detail}")
    pid = systemd_mod.main_pid(unit, run) or 0
    if pid:
        (job.dir / "worker.pid").write_text(f"{pid}\n")
    return pid


def _start_process(job: LocalJob, argv: list[str], env: dict[str, str], popen: Popen) -> int:
    """Start the worker in its own session, handing it the job's lock.

    The lock is taken here, before the worker exists, so there is no moment where a live
    job looks dead.
    """
    lock_fd = os.open(job.lock_path, os.O_RDWR)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(job.log_path, "ab") as log:
            process = popen(
                [*argv, str(lock_fd)],
                start_new_session=True,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,),
                close_fds=True,
                cwd=str(job.dir),
            )
    except OSError as exc:
        raise _failed(job, str(exc.strerror or exc)) from exc
    finally:
        os.close(lock_fd)  # the worker keeps its own copy of the lock
    (job.dir / "worker.pid").write_text(f"{process.pid}\n")
    return int(process.pid)


def worker_pid(job: LocalJob) -> int | None:
    """The pid the worker was started with, if recorded."""
    try:
        return int((job.dir / "worker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cancel(job: LocalJob) -> bool:
    """Ask a running job to stop; False if it is not running.

    SIGTERM goes to the worker only (`systemctl kill --kill-who=main` for a transient
    unit), which passes it on to the engine: the engine stops its tools itself, a backup
    deletes its partial artefact, a restore puts the previous data back.
    """
    if job.finished_record() is not None:
        return False
    unit = job.systemd_unit
    if unit is not None:
        if not job.is_locked() and not systemd_mod.is_active(unit):
            return False
        return systemd_mod.kill(unit)
    pid = worker_pid(job)
    if pid is None or not job.is_locked():
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def spec_file_mode(path: Path) -> int:
    """The permission bits of a spec file (for checks and tests)."""
    return path.stat().st_mode & 0o777
