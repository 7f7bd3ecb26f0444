"""Pytest fixtures of the workload test modules (tests/workload/conftest.py imports them).

- `server` (module scope): a MariaDB server of the module's own, named after the module.
  A module may set `SERVER_OPTIONS` (`MariaDBServer` keyword arguments, e.g. a server id).
- `catalog` (function scope): the `Catalog` of the module's `CLUSTER` on this test's `storage`.
- `region_b` (function scope): a second bucket owned by another RGW user (the copy tests'
  other region, with other credentials): its name and user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from database_backup.catalog import Catalog
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3, S3User
from tests.infra.fixtures import unique_bucket_name
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import shutdown


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, make_mariadb: Callable[..., MariaDBServer]
) -> Iterator[MariaDBServer]:
    """A server of this module's own: restores replace all of its data.

    Stopped after the module's last test, also when a restore started it again outside
    this fixture (through the spec's `server.start` command).
    """
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    options: dict[str, Any] = getattr(request.module, "SERVER_OPTIONS", {})
    db = make_mariadb(name, **options)
    yield db
    shutdown(db)


@pytest.fixture
def catalog(request: pytest.FixtureRequest, storage: S3Storage) -> Catalog:
    """The catalog of the module's `CLUSTER` on this test's bucket."""
    cluster: str = request.module.CLUSTER
    return Catalog(storage, cluster)


@pytest.fixture
def region_b(ceph: CephS3) -> Iterator[tuple[str, S3User]]:
    """A second bucket owned by another RGW user: another region, other credentials."""
    user_b = ceph.create_user(unique_bucket_name("user-b"))
    bucket_b = unique_bucket_name("region-b")
    ceph.create_bucket(bucket_b, user_b)
    yield bucket_b, user_b
    ceph.remove_bucket(bucket_b, user_b)
