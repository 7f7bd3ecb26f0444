"""The gateway and database server a data-path bench runs against, in a throwaway directory."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def bench_environment(prefix: str, memstore_mib: int, bucket: str) -> Iterator[BenchEnvironment]:
    """Start RGW (memstore of `memstore_mib`) and MariaDB under a temporary directory.

    Both are stopped and the directory removed on the way out, whatever happened.
    """
    from tests.infra.ceph import CephS3
    from tests.infra.mariadb import MariaDBServer
    from tests.workload.engine_helpers import shutdown

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
