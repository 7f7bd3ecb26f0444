"""Test data on the fixture servers, and what "the same data" means: checksums and row hashes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timezone

from database_backup.catalog import Catalog
from database_backup.storage import S3Config, S3Storage
from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name
from tests.infra.mariadb import MariaDBServer

from .harness import S3Location

#: starts a MariaDB for the test by name (the `servers` fixture)
Servers = Callable[[str], MariaDBServer]

SYSTEM = {"information_schema", "mysql", "performance_schema", "sys"}


def create_shop(db: MariaDBServer, database: str = "shop", rows: int = 2_000) -> None:
    """A database with an InnoDB table of `rows` rows and a small Aria table."""
    db.execute(
        f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`;"  # noqa: S608
        f"USE `{database}`;"
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40),"
        " qty INT, note TEXT) ENGINE=InnoDB;"
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=Aria;"
        "INSERT INTO customers SELECT seq, CONCAT('customer-', seq) FROM seq_1_to_50;"
    )
    add_orders(db, rows, "initial", database)


def add_orders(db: MariaDBServer, rows: int, tag: str, database: str = "shop") -> None:
    """Insert `rows` more orders tagged `tag`."""
    db.execute(
        f"INSERT INTO `{database}`.orders (item, qty, note) SELECT"  # noqa: S608 - test data
        f" CONCAT('{tag}-', seq), seq % 17, REPEAT(MD5(seq), 4) FROM seq_1_to_{rows};",
        database,
    )


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a database holds: CHECKSUM TABLE and an order-independent row hash per table."""

    checksums: dict[str, str]
    rows: dict[str, tuple[str, str]]

    def __str__(self) -> str:
        parts = [f"{t}={self.rows[t][0]} rows/{self.checksums[t]}" for t in sorted(self.rows)]
        return ", ".join(parts)


def snapshot(db: MariaDBServer, database: str = "shop") -> Snapshot:
    """The checksums and row hashes of every table of `database`."""
    checksums = db.checksum_tables(database)
    rows = {}
    for table in checksums:
        names = "GROUP_CONCAT(CONCAT('`', column_name, '`') ORDER BY ordinal_position)"
        where = f"table_schema = '{database}' AND table_name = '{table}'"
        sql = f"SELECT {names} FROM information_schema.columns WHERE {where}"  # noqa: S608
        columns = db.query(sql)[0][0]
        count, digest = db.query(
            f"SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', {columns}))), 0)"  # noqa: S608
            f" FROM `{database}`.`{table}`"
        )[0]
        rows[table] = (count, digest)
    return Snapshot(checksums, rows)


def databases(db: MariaDBServer) -> set[str]:
    """User databases on the server."""
    return {row[0] for row in db.query("SHOW DATABASES")} - SYSTEM


def utc_now() -> datetime:
    """Now, aware, UTC."""
    return datetime.now(timezone.utc)


def two_regions(ceph: CephS3) -> tuple[S3Location, S3Location]:
    """region-a: a bucket of the admin user; region-b: another user's bucket (another region)."""
    bucket_a = unique_bucket_name("region-a")
    ceph.create_bucket(bucket_a)
    user_b = ceph.create_user(unique_bucket_name("user-b"))
    bucket_b = unique_bucket_name("region-b")
    ceph.create_bucket(bucket_b, user_b)
    region_a = S3Location(
        "region-a", ceph.endpoint, bucket_a, ceph.access_key, ceph.secret_key, ceph.region
    )
    region_b = S3Location(
        "region-b", ceph.endpoint, bucket_b, user_b.access_key, user_b.secret_key, ceph.region,
        path="dr",
    )  # fmt: skip
    return region_a, region_b


def catalog(location: S3Location, app: str = "mysql-server", model: str = "") -> Catalog:
    """The catalog the manager and the provider share for `app` (of `model`'s uuid)."""
    from .harness import MODEL

    config = S3Config(
        bucket=location.bucket,
        access_key=location.access_key,
        secret_key=location.secret_key,
        endpoint=location.endpoint,
        region=location.region,
        path=location.path,
    )
    return Catalog(S3Storage(config), f"{model or MODEL.uuid}/{app}")
