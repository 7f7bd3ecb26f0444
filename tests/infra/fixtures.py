"""Pytest fixtures: a real MariaDB server and a real S3 gateway (Ceph RGW) on loopback.

`tests/workload/conftest.py` imports them; a suite in another directory (e.g.
`tests/e2e`) does the same in its own conftest. Run the suites in separate pytest
sessions (tox does), or each directory's conftest starts its own gateway.

Session fixtures:

- `ceph`: the `CephS3` gateway (HTTP on `ceph.endpoint`, HTTPS on `ceph.tls_endpoint`
  with `ceph.ca_bundle`), started once. A test that kills the gateway
  (`ceph.kill_rgw()`) gets it restarted after it.
- `mariadb`: one `MariaDBServer` for the whole session (don't break it; use
  `make_mariadb()` for a server a test may stop, wipe or restore into).
- `make_mariadb`: `make_mariadb(name=None, **MariaDBServer kwargs)` starts one more server;
  all are stopped at the end of the session.

Function fixtures:

- `bucket`: a fresh bucket on `ceph` (admin user), emptied and deleted afterwards.
- `s3_config`: the `S3Config` for `bucket` (plain HTTP, path style, no prefix).
- `storage`: an `S3Storage` on `s3_config`.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer

if TYPE_CHECKING:
    from database_backup.storage import S3Config, S3Storage

logger = logging.getLogger(__name__)

_bucket_counter = itertools.count()


def unique_bucket_name(hint: str = "t") -> str:
    """A valid, unique bucket name (3-63 chars of [a-z0-9-]) starting with `hint`."""
    hint = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:24] or "t"
    return f"{hint}-{os.getpid()}-{next(_bucket_counter)}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephS3]:
    """One Ceph RGW (mon + memstore OSD + gateway, HTTP and HTTPS) per session."""
    gateway = CephS3(tmp_path_factory.mktemp("ceph"), tls=True)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(autouse=True)
def _restart_killed_rgw(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that killed the gateway, start it again for the next one."""
    yield
    if "ceph" in request.fixturenames:
        gateway: CephS3 = request.getfixturevalue("ceph")
        if not gateway.rgw_running:
            gateway.restart_rgw()


@pytest.fixture
def bucket(ceph: CephS3, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty bucket for this test, removed afterwards."""
    name = unique_bucket_name(request.node.name)
    ceph.create_bucket(name)
    yield name
    if not ceph.rgw_running:
        ceph.restart_rgw()
    try:
        ceph.remove_bucket(name)
    except Exception as exc:
        logger.warning("could not remove bucket %s: %s", name, exc)


@pytest.fixture
def s3_config(ceph: CephS3, bucket: str) -> S3Config:
    """`S3Config` for this test's bucket (HTTP, path style, no prefix)."""
    return ceph.s3_config(bucket)


@pytest.fixture
def storage(s3_config: S3Config) -> Iterator[S3Storage]:
    """`S3Storage` on this test's bucket."""
    from database_backup.storage import S3Storage

    with S3Storage(s3_config) as opened:
        yield opened


@pytest.fixture(scope="session")
def make_mariadb(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MariaDBServer]]:
    """Start more MariaDB servers: `make_mariadb(name=None, **MariaDBServer kwargs)`."""
    servers: list[MariaDBServer] = []
    counter = itertools.count(1)

    def make(name: str | None = None, **kwargs: Any) -> MariaDBServer:
        n = next(counter)
        kwargs.setdefault("server_id", n)
        server = MariaDBServer(tmp_path_factory.mktemp(name or f"mariadb{n}"), **kwargs)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        try:
            server.stop(timeout=30)
        except Exception as exc:
            logger.warning("could not stop mariadb on port %d: %s", server.port, exc)


@pytest.fixture(scope="session")
def mariadb(make_mariadb: Callable[..., MariaDBServer]) -> MariaDBServer:
    """One MariaDB server for the whole session."""
    return make_mariadb("mariadb")
