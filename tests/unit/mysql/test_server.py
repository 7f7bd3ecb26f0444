"""Server control: SystemdServer's systemctl calls and CommandServer, with stand-in programs."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from database_backup import stopping
from database_backup.mysql import CommandServer, ServerControl, ServerControlError, SystemdServer
from database_backup.mysql.progress import ProgressEvent


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    _script(
        bindir / "systemctl",
        f'echo "$@" >> "{log}"\n'
        'if [ "$1" = start ] && [ -e "' + str(tmp_path / "fail") + '" ]; then\n'
        '  echo "Job for mysql.service failed" >&2; exit 1\nfi\n'
        'if [ "$1" = is-active ]; then exit 3; fi\n'
        "exit 0\n",
    )
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return log


def test_systemd_server(fake_systemctl: Path, tmp_path: Path):
    server = SystemdServer("mysql", "/var/lib/mysql")
    assert isinstance(server, ServerControl)
    assert server.datadir == Path("/var/lib/mysql")
    server.stop()
    server.start()
    assert server.is_running() is False
    assert fake_systemctl.read_text().splitlines() == [
        "stop mysql",
        "start mysql",
        "is-active --quiet mysql",
    ]
    (tmp_path / "fail").touch()
    with pytest.raises(ServerControlError, match=r"Job for mysql\.service failed"):
        server.start()


def test_command_server(tmp_path: Path):
    state = tmp_path / "running"
    server = CommandServer(
        tmp_path,
        start=["touch", str(state)],
        stop=["rm", "-f", str(state)],
        status=["test", "-e", str(state)],
    )
    assert isinstance(server, ServerControl)
    assert not server.is_running()
    server.start()
    assert server.is_running()
    server.stop()
    assert not server.is_running()


def test_command_server_errors(tmp_path: Path):
    server = CommandServer(
        tmp_path, start=["false"], stop=["no-such-program-xyz"], status=["true"]
    )
    with pytest.raises(ServerControlError, match="cannot start"):
        server.start()
    with pytest.raises(ServerControlError, match="not installed"):
        server.stop()
    with pytest.raises(ValueError, match="required"):
        CommandServer(tmp_path, start=[], stop=["x"], status=["y"])


@pytest.fixture
def sigterm_in() -> Iterator[Callable[[float], None]]:
    """Send this process SIGTERM after some seconds, under the engine's handler.

    The handler raises `TerminatedError`, as the CLI's does. SIGTERM is ignored while the
    timers not yet fired are cancelled, then the handler put back: a failing test cannot
    end pytest.
    """

    def raise_stop(signum: int, _frame: FrameType | None) -> None:
        raise stopping.request(f"stopped by signal {signal.Signals(signum).name}")

    timers: list[threading.Timer] = []

    def schedule(seconds: float) -> None:
        timers.append(threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM)))
        timers[-1].start()

    previous = signal.signal(signal.SIGTERM, raise_stop)
    yield schedule
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a timer still due cannot end pytest now
    for timer in timers:
        timer.cancel()
        timer.join()
    signal.signal(signal.SIGTERM, previous)
    stopping.clear()


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def _starting_with(tmp_path: Path, script: str, timeout: float = 600.0) -> CommandServer:
    """A server whose start is `sh -c script` (stop and status always succeed)."""
    return CommandServer(
        tmp_path, start=["sh", "-c", script], stop=["true"], status=["true"], timeout=timeout
    )


def test_sigterm_during_a_start_waits_for_the_command_then_raises(
    tmp_path: Path, sigterm_in: Callable[[float], None]
):
    """A start cut half-way would leave a server starting behind the restore's back."""
    started = tmp_path / "started"
    server = _starting_with(tmp_path, f"sleep 1; touch {started}")
    begun = time.monotonic()
    sigterm_in(0.2)

    with pytest.raises(stopping.TerminatedError, match="SIGTERM"):
        server.start()

    assert started.exists()  # the command ran to its end
    assert time.monotonic() - begun >= 1.0


def test_sigterm_during_a_command_is_only_recorded_while_held(
    tmp_path: Path, sigterm_in: Callable[[float], None]
):
    server = _starting_with(tmp_path, "sleep 0.5")
    sigterm_in(0.1)

    with stopping.holding():
        server.start()  # putting the previous data back goes on

    with pytest.raises(stopping.TerminatedError, match="SIGTERM"):
        stopping.raise_if_requested()


@pytest.fixture
def child_pid(tmp_path: Path) -> Iterator[Path]:
    """A file where a command writes its background child's pid; that child killed after."""
    path = tmp_path / "child.pid"
    yield path
    if path.exists() and _alive(int(path.read_text())):
        os.kill(int(path.read_text()), signal.SIGKILL)


def test_a_command_past_its_timeout_is_killed_with_its_group(tmp_path: Path, child_pid: Path):
    server = _starting_with(tmp_path, f"sleep 60 & echo $! > {child_pid}; wait", timeout=1)

    with pytest.raises(ServerControlError, match="no answer within 1 s"):
        server.start()

    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the command's own child outlived its timeout"


def test_a_server_left_in_the_background_does_not_hold_the_command(
    tmp_path: Path, child_pid: Path
):
    """A start command that leaves the server running with our output still open returns."""
    server = _starting_with(tmp_path, f"sleep 30 & echo $! > {child_pid}; echo started", 10)
    begun = time.monotonic()

    server.start()

    assert time.monotonic() - begun < 5
    assert _alive(int(child_pid.read_text()))  # the "server" runs on


def test_the_last_line_of_a_failing_command_is_the_error(tmp_path: Path):
    noisy = "for i in $(seq 20000); do echo line $i; done; echo 'the port is taken' >&2; exit 1"
    server = _starting_with(tmp_path, noisy)
    with pytest.raises(ServerControlError, match=r"cannot start the server: the port is taken$"):
        server.start()


def test_progress_fraction():
    assert ProgressEvent("download", 50, 200).fraction == 0.25
    assert ProgressEvent("download", 500, 200).fraction == 1.0
    assert ProgressEvent("prepare").fraction is None
