"""Stopping and starting the database server around a restore.

The restore needs three things from whatever runs the server: stop it cleanly, start it,
and say whether it runs; plus where its data directory is. `ServerControl` is that
protocol (test fixtures satisfy it structurally); `SystemdServer` drives a systemd unit
and `CommandServer` runs given commands (e.g. `snap stop ...` for a snap-packaged server).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from database_backup import stopping

from .errors import EngineError


class ServerControlError(EngineError):
    """Stopping or starting the server failed."""


@runtime_checkable
class ServerControl(Protocol):
    """What the restore needs to control the database server."""

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        ...

    def stop(self) -> None:
        """Stop the server cleanly and return once it has stopped."""
        ...

    def start(self) -> None:
        """Start the server and return once it has started (or raise)."""
        ...

    def is_running(self) -> bool:
        """Return whether the server runs."""
        ...


def _run(argv: Sequence[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a control command to its end, in its own process group.

    A SIGTERM that arrives meanwhile waits until the command has ended (`stopping.deferring`):
    a start or stop cut half-way would leave the server starting or stopping behind the
    engine's back while it puts the previous data back. A command still running after
    `timeout` s is killed with every process of its group. Its output goes to files, not
    pipes: a server it leaves running in the background may keep them open.
    """
    with stopping.deferring(), tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ServerControlError(f"cannot {what}: {argv[0]!r} is not installed") from exc
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ServerControlError(f"cannot {what}: no answer within {timeout:.0f} s") from exc
        return subprocess.CompletedProcess(proc.args, returncode, _tail(out), _tail(err))


def _tail(output: IO[bytes], limit: int = 65536) -> str:
    """The last `limit` bytes a command wrote to `output`, as text."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - limit))
    return output.read().decode(errors="replace")


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        tail = detail[-1] if detail else f"exit code {proc.returncode}"
        raise ServerControlError(f"cannot {what}: {tail}")


class SystemdServer:
    """A server run by a systemd unit (`systemctl stop|start|is-active <unit>`)."""

    def __init__(self, unit: str, datadir: str | Path, *, timeout: float = 600.0) -> None:
        self.unit = unit
        self._datadir = Path(datadir)
        self.timeout = timeout

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self._datadir

    def stop(self) -> None:
        """Stop the unit (systemctl waits for the clean shutdown)."""
        what = f"stop {self.unit}"
        _check(_run(["systemctl", "stop", self.unit], what, self.timeout), what)

    def start(self) -> None:
        """Start the unit (returns when systemd considers it started)."""
        what = f"start {self.unit}"
        _check(_run(["systemctl", "start", self.unit], what, self.timeout), what)

    def is_running(self) -> bool:
        """Return whether the unit is active."""
        proc = _run(["systemctl", "is-active", "--quiet", self.unit], "query", 30.0)
        return proc.returncode == 0

    def __repr__(self) -> str:
        return f"SystemdServer(unit={self.unit!r}, datadir={str(self._datadir)!r})"


class CommandServer:
    """A server controlled by arbitrary commands (argv lists, no shell, no secrets)."""

    def __init__(
        self,
        datadir: str | Path,
        *,
        start: Sequence[str],
        stop: Sequence[str],
        status: Sequence[str],
        timeout: float = 600.0,
    ) -> None:
        if not start or not stop or not status:
            raise ValueError("start, stop and status commands are all required")
        self._datadir = Path(datadir)
        self.start_command = list(start)
        self.stop_command = list(stop)
        self.status_command = list(status)
        self.timeout = timeout

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self._datadir

    def stop(self) -> None:
        """Run the stop command."""
        _check(_run(self.stop_command, "stop the server", self.timeout), "stop the server")

    def start(self) -> None:
        """Run the start command."""
        _check(_run(self.start_command, "start the server", self.timeout), "start the server")

    def is_running(self) -> bool:
        """Return whether the status command succeeds."""
        return _run(self.status_command, "query the server", 60.0).returncode == 0

    def __repr__(self) -> str:
        return f"CommandServer(datadir={str(self._datadir)!r})"
