"""Workers as transient systemd units, outside the Juju agent's cgroup.

A process started from a hook stays in the unit agent's cgroup; the agent's service
(`jujud-machine-N`) has the default `KillMode=control-group`, so an agent restart, crash
or `juju upgrade-model` would kill a backup or a restore midway. Where systemd is PID 1,
the worker runs instead as its own transient unit (`systemd-run`), which outlives the
agent. Elsewhere (containers without systemd, tests) `launch` keeps the detached process.

Nothing secret goes on these command lines: the secrets stay in the job's 0600 spec file.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: exists only when systemd is PID 1 (what sd_booted() checks)
RUN_DIR = Path("/run/systemd/system")
SYSTEMD_RUN = "/usr/bin/systemd-run"
SYSTEMCTL = "/usr/bin/systemctl"
#: seconds the worker has after SIGTERM (a restore puts the previous data back) before SIGKILL
STOP_TIMEOUT = 900
QUERY_TIMEOUT = 30.0
ALIVE = ("active", "activating", "deactivating", "reloading", "refreshing")

Run = Callable[..., Any]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
_MAX_NAME = 255


def booted(run_dir: Path | None = None) -> bool:
    """Whether systemd runs this machine (as sd_booted(): `/run/systemd/system` exists)."""
    return os.path.isdir(RUN_DIR if run_dir is None else run_dir)


def unit_name(key: str, *, owner: str, where: Path) -> str:
    """The transient unit's name for the job `key` of the Juju unit `owner`.

    Readable (owner and job key, sanitised to what unit names allow) and unique per
    Juju unit and job directory (a short hash of both), at most 255 characters.
    """
    digest = hashlib.sha256(f"{owner}\0{Path(where).resolve()}".encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("-", f"{owner}-{key}" if owner else key).strip("-")
    prefix = "database-backup-"
    room = _MAX_NAME - len(prefix) - len(digest) - len(".service") - 1
    return f"{prefix}{readable[:room].rstrip('-')}-{digest}.service"


def run_argv(
    unit: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    description: str,
) -> list[str]:
    """`systemd-run` for `command` as `unit`: the given environment only, output to `log`.

    `KillMode=mixed`: a stop sends SIGTERM to the worker alone (it passes it on to the
    engine, which cleans up) and SIGKILL to whatever is left after `STOP_TIMEOUT`.
    """
    return [
        SYSTEMD_RUN,
        f"--unit={unit}",
        "--collect",
        "--quiet",
        f"--description={description}",
        "--property=Type=exec",
        "--property=KillMode=mixed",
        f"--property=TimeoutStopSec={STOP_TIMEOUT}",
        f"--property=WorkingDirectory={cwd}",
        "--property=StandardInput=null",
        f"--property=StandardOutput=append:{log}",
        f"--property=StandardError=append:{log}",
        *(f"--setenv={name}={value}" for name, value in sorted(env.items())),
        "--",
        *command,
    ]


def kill_argv(unit: str) -> list[str]:
    """SIGTERM to the unit's main process (the worker) only."""
    return [SYSTEMCTL, "kill", "--kill-who=main", "--signal=SIGTERM", unit]


def _query(argv: list[str], run: Run | None) -> subprocess.CompletedProcess[str] | None:
    runner = subprocess.run if run is None else run
    try:
        return runner(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def is_active(unit: str, run: Run | None = None) -> bool | None:
    """Whether systemd runs `unit` now; None when systemctl gave no answer."""
    result = _query([SYSTEMCTL, "is-active", unit], run)
    if result is None:
        return None
    answer = (result.stdout or "").strip()
    if not answer:
        return None
    return answer in ALIVE


def main_pid(unit: str, run: Run | None = None) -> int | None:
    """The pid of the unit's main process, if systemd knows it."""
    result = _query([SYSTEMCTL, "show", "--property=MainPID", "--value", unit], run)
    text = (result.stdout or "").strip() if result is not None else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def kill(unit: str, run: Run | None = None) -> bool:
    """Send SIGTERM to the unit's worker; whether systemctl did."""
    result = _query(kill_argv(unit), run)
    return result is not None and result.returncode == 0
