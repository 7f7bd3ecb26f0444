"""Server control: SystemdServer's systemctl calls and CommandServer, with stand-in programs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

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


def test_progress_fraction():
    assert ProgressEvent("download", 50, 200).fraction == 0.25
    assert ProgressEvent("download", 500, 200).fraction == 1.0
    assert ProgressEvent("prepare").fraction is None
