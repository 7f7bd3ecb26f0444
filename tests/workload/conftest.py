"""Workload tests run against a real MariaDB and a real Ceph RGW.

The gateway, bucket and server fixtures are tests/infra/fixtures.py's; the module's own
server, its catalog and the copy tests' second bucket are tests/workload/fixtures.py's.
"""

from tests.infra.fixtures import (  # noqa: F401 - pytest finds fixtures by name here
    _restart_killed_rgw,
    bucket,
    ceph,
    make_mariadb,
    mariadb,
    s3_config,
    storage,
)
from tests.workload.fixtures import catalog, region_b, server  # noqa: F401 - as above
