"""End-to-end tests run against a real MariaDB and a real Ceph RGW: see tests/infra/fixtures.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.infra.fixtures import (  # noqa: F401 - pytest finds fixtures by name here
    _restart_killed_rgw,
    bucket,
    ceph,
    make_mariadb,
)
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import shutdown

from .data import Servers


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """`servers(name)` starts a MariaDB for this test; all are stopped after it.

    A restore stops the server and starts it again with its own command, outside the
    fixture's process handle: `shutdown` stops that one too.
    """
    make_server: Callable[..., MariaDBServer] = request.getfixturevalue("make_mariadb")
    made: list[MariaDBServer] = []

    def make(name: str) -> MariaDBServer:
        server = make_server(name)
        made.append(server)
        return server

    yield make
    for server in made:
        shutdown(server)
