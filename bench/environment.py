"""The gateway and database server a data-path bench runs against, in a throwaway directory."""

from __future__ import annotations

import compileall
import contextlib
import os
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1 << 20
#: the server the data-path benches measure: a 256 MiB buffer pool and redo log
SERVER_ARGS = ("--innodb-buffer-pool-size=256M", "--innodb-log-file-size=256M")


@dataclass(frozen=True)
class BenchEnvironment:
    """A started Ceph RGW with `bucket`, a started MariaDB, and their directory."""

    base: Path
    gateway: Any  # tests.infra.ceph.CephS3
    server: Any  # tests.infra.mariadb.MariaDBServer


def compile_product(roots: Sequence[Path] | None = None) -> float:
    """Byte-compile the product's code and its dependencies; return the seconds it took.

    The packed charm ships its venv compiled (`docs/reference/packaging.md`). A bench run
    from the source tree would otherwise time Python compiling every module whose `.pyc` is
    missing or older than its source, in every cold process, whenever bytecode is not
    written back (`PYTHONDONTWRITEBYTECODE`, a read-only tree): measured here, 0.1 s of a
    2.3 s backup for two edited modules. Timestamp `.pyc` files, as Python writes them, so
    a later edit is compiled again rather than run stale.

    Args:
        roots: directories to compile (default: the `database_backup` package and this
            interpreter's site-packages).

    Raises:
        RuntimeError: a file did not compile.
    """
    import database_backup

    started = time.monotonic()
    if roots is None:
        roots = (Path(database_backup.__file__).parent, Path(sysconfig.get_paths()["purelib"]))
    for root in roots:
        if not compileall.compile_dir(root, quiet=1, workers=0):
            raise RuntimeError(f"byte-compiling {root} failed (see above)")
    return time.monotonic() - started


def busy_from_stat(stat: str, ticks_per_second: float) -> float:
    """Seconds the whole machine's CPUs were busy, from `/proc/stat`'s first line.

    Busy is every field but idle and iowait (user, nice, system, irq, softirq, steal; the
    guest fields are already in user and nice).
    """
    fields = stat.splitlines()[0].split()
    if fields[0] != "cpu":
        raise ValueError(f"not /proc/stat's total line: {fields[0]!r}")
    ticks = [int(value) for value in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / ticks_per_second


def machine_busy() -> float:
    """Core-seconds the whole machine has been busy since boot (`busy_from_stat`)."""
    return busy_from_stat(Path("/proc/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def settle(datadir: Path) -> int:
    """Put the machine in the same state before every timed run; return the files evicted.

    - `os.sync()`: the dirty pages a previous run left are written back now, not during
      the next run. A peer's restore (`mbstream -x`, `--prepare`) can leave GiBs of them,
      the product's restore none (direct I/O, fsync).
    - then every file of the database's datadir leaves the page cache
      (`POSIX_FADV_DONTNEED`; after the sync its pages are clean): InnoDB reads and writes
      them with O_DIRECT (MariaDB's default), so on a server a backup reads them from
      disk; here a backup right after another could find them cached, and one after the
      product's restore (direct I/O) could not.
    """
    os.sync()
    evicted = 0
    for path in datadir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # a socket, or a file the server just removed
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            evicted += 1
        finally:
            os.close(fd)
    return evicted


@contextlib.contextmanager
def bench_environment(prefix: str, memstore_mib: int, bucket: str) -> Iterator[BenchEnvironment]:
    """Start RGW (memstore of `memstore_mib`) and MariaDB under a temporary directory.

    The product's code is byte-compiled first (`compile_product`), as the packed charm is.
    Both are stopped and the directory removed on the way out, whatever happened.
    """
    from tests.infra.ceph import CephS3
    from tests.infra.mariadb import MariaDBServer
    from tests.workload.engine_helpers import shutdown

    print(f"product byte-compiled as packed: {compile_product():.1f} s", flush=True)
    base = Path(tempfile.mkdtemp(prefix=prefix))
    gateway = CephS3(base / "ceph", memstore_bytes=memstore_mib * MiB)
    server = MariaDBServer(base / "mariadb", extra_args=SERVER_ARGS)
    try:
        gateway.start()
        server.start()
        gateway.create_bucket(bucket)
        yield BenchEnvironment(base, gateway, server)
    finally:
        shutdown(server)
        gateway.stop()
        shutil.rmtree(base, ignore_errors=True)
