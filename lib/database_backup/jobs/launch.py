"""Start a job's worker outside the hook: own session, clean environment, no terminal.

The hook that starts a job returns within seconds; the worker (`database_backup.jobs.worker`)
runs the engine's command line, keeps the job's lock, and reports back when it ends.
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

from .store import ERROR, LocalJob

#: the only variables a worker gets: no JUJU_* hook context, no proxies, no secrets
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
) -> int:
    """Start the detached worker for `job` and return its pid.

    The job's lock is taken here, before the worker exists, and handed down to it, so there
    is no moment where a live job looks dead.

    Raises:
        OSError: the worker could not be started (the job is then recorded as failed).
    """
    lock_fd = os.open(job.lock_path, os.O_RDWR)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(job.log_path, "ab") as log:
            os.fchmod(log.fileno(), 0o600)
            process = popen(
                [python, "-m", "database_backup.jobs.worker", str(job.dir), str(lock_fd)],
                start_new_session=True,
                env=clean_env(hook_python_path() if python_path is None else python_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,),
                close_fds=True,
                cwd=str(job.dir),
            )
    except OSError as exc:
        job.finish(ERROR, f"could not start the job's worker: {exc.strerror or exc}")
        raise
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

    SIGTERM goes to the worker only, which passes it on to the engine: the engine stops
    its tools itself, a backup deletes its partial artefact, a restore puts the previous
    data back.
    """
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
