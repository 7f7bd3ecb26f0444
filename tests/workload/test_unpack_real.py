"""XbstreamUnpacker on a real `mariabackup --backup --stream=xbstream`, against `mbstream -x`.

One stream of a small database (InnoDB with > 1 MiB of rows, Aria, MyISAM), taken with two
copy threads so chunks of files interleave, is unpacked by both; the trees must be the same
file for file and byte for byte, and `mariabackup --prepare` must accept ours.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from database_backup.mysql.flavour import MARIADB, for_name
from database_backup.mysql.physical.commands import backup_command, prepare_command
from database_backup.mysql.physical.unpack import XbstreamUnpacker
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import fill

DATABASE = "shop"


def _tree(root: Path) -> dict[str, tuple[int, str] | None]:
    """Every entry under `root`: (size, SHA-256) of a file, None for a directory."""
    out: dict[str, tuple[int, str] | None] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        assert not path.is_symlink(), name
        if path.is_dir():
            out[name] = None
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        out[name] = (path.stat().st_size, digest.hexdigest())
    return out


def test_unpacker_gives_mbstreams_files_and_prepare_accepts_them(
    server: MariaDBServer, tmp_path: Path
):
    flavour = for_name(MARIADB)
    fill(server, DATABASE)
    stream = tmp_path / "backup.xbstream"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = backup_command(flavour, server.defaults_file, target_dir=scratch, parallel=2)
    with stream.open("wb") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, check=True)

    theirs = tmp_path / "mbstream"
    theirs.mkdir()
    with stream.open("rb") as source:
        subprocess.run(
            [shutil.which("mbstream") or "mbstream", "-x", "-C", str(theirs)],
            stdin=source,
            check=True,
        )
    ours = tmp_path / "ours"
    ours.mkdir()
    unpacker = XbstreamUnpacker(ours)
    with stream.open("rb") as source:
        consumed = unpacker.unpack(source)

    expected = _tree(theirs)
    assert _tree(ours) == expected
    assert consumed == stream.stat().st_size
    assert unpacker.files_written == sum(1 for entry in expected.values() if entry is not None)
    # the stream held what the test is about: > 1 MiB of InnoDB rows (as orders.ibd, or as
    # orders.new when mariabackup saw the table's DDL during the copy), Aria and MyISAM files
    sizes = {name: entry[0] for name, entry in expected.items() if entry is not None}
    assert max(sizes.get(f"{DATABASE}/orders.{ext}", 0) for ext in ("ibd", "new")) > 1 << 20
    assert {f"{DATABASE}/events.MAD", f"{DATABASE}/legacy.MYD"} <= sizes.keys()

    prepared = subprocess.run(
        prepare_command(flavour, ours, use_memory_mb=64), capture_output=True, text=True
    )
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "completed OK!" in prepared.stderr
    assert (ours / DATABASE / "orders.ibd").stat().st_size > 1 << 20
