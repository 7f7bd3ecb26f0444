"""ConnectionSpec: the 0600 defaults file, quoting read back by the real option parser."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from database_backup.mysql import ConnectionSpec

TRICKY = "p#w\"d\\x y'z;=\t[client]"


def _print_defaults(path: Path, group: str) -> list[str]:
    tool = shutil.which("my_print_defaults") or shutil.which("mariadb-print-defaults")
    assert tool, "my_print_defaults comes with mariadb-client (scripts/install-system-deps.sh)"
    out = subprocess.run(
        [tool, f"--defaults-file={path}", group], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_repr_hides_password():
    conn = ConnectionSpec(user="backup", password="hunter2-secret")
    assert "hunter2-secret" not in repr(conn)
    assert "backup" in repr(conn)


def test_defaults_file_is_private_and_removed(tmp_path: Path):
    conn = ConnectionSpec(user="backup", password="s3cret")
    with conn.defaults_file(tmp_path) as path:
        assert path.parent == tmp_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "s3cret" in path.read_text()
    assert not path.exists()


def test_defaults_file_removed_on_error(tmp_path: Path):
    conn = ConnectionSpec(user="backup", password="s3cret")
    with pytest.raises(RuntimeError), conn.defaults_file(tmp_path) as path:
        raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("group", ["client", "xtrabackup"])
def test_tricky_password_survives_the_option_parser(tmp_path: Path, group: str):
    conn = ConnectionSpec(user="back up", password=TRICKY, host="10.0.0.5", port=3307)
    with conn.defaults_file(tmp_path) as path:
        options = _print_defaults(path, group)
    assert options == [
        "--user=back up",
        f"--password={TRICKY}",
        "--host=10.0.0.5",
        "--port=3307",
    ]


def test_socket_replaces_host_and_port(tmp_path: Path):
    conn = ConnectionSpec(user="root", password="", socket="/run/mysqld/mysqld.sock")
    with conn.defaults_file(tmp_path) as path:
        options = _print_defaults(path, "client")
    assert options == ["--user=root", "--host=localhost", "--socket=/run/mysqld/mysqld.sock"]
