"""Workload tests run against a real MariaDB and a real Ceph RGW: see tests/infra/fixtures.py."""

from tests.infra.fixtures import (  # noqa: F401 - pytest finds fixtures by name here
    _restart_killed_rgw,
    bucket,
    ceph,
    make_mariadb,
    mariadb,
    s3_config,
    storage,
)
