"""Smoke tests of the workload fixtures: the real MariaDB and the real S3 gateway answer."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer


def test_mariadb_answers_a_query(mariadb: MariaDBServer):
    mariadb.execute(
        "CREATE DATABASE smoke;"
        "CREATE TABLE smoke.items (id INT PRIMARY KEY, name TEXT);"
        "INSERT INTO smoke.items SELECT seq, CONCAT('item-', seq) FROM smoke.seq_1_to_1000;"
    )

    assert mariadb.query("SELECT COUNT(*), MAX(name) FROM smoke.items") == [("1000", "item-999")]
    assert mariadb.scalar("SELECT name FROM items WHERE id = 42", database="smoke") == "item-42"
    assert mariadb.scalar("SELECT @@log_bin") == "1"
    assert mariadb.scalar("SELECT CURRENT_USER()") == "root@127.0.0.1"
    assert set(mariadb.checksum_tables("smoke")) == {"items"}


def test_mariadb_restart_keeps_data_and_root_password_works_over_tcp(
    make_mariadb: Callable[..., MariaDBServer],
):
    server = make_mariadb()
    server.execute(
        "CREATE DATABASE keep; CREATE TABLE keep.t (v INT); INSERT INTO keep.t VALUES (7)"
    )
    before = server.checksum_tables("keep")

    server.stop()
    assert not server.is_running()
    server.start()

    assert server.checksum_tables("keep") == before
    assert server.defaults_file.stat().st_mode & 0o077 == 0
    wrong = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", f"--port={server.port}",
         "--host=127.0.0.1", "--user=root", "-e", "SELECT 1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "Access denied" in wrong.stderr


def test_s3_put_get_roundtrip(ceph: CephS3, bucket: str):
    body = os.urandom(3 * 1024 * 1024)
    s3 = ceph.client()

    s3.put_object(Bucket=bucket, Key="smoke/blob", Body=body)
    got = s3.get_object(Bucket=bucket, Key="smoke/blob")["Body"].read()

    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    assert ceph.keys(bucket, prefix="smoke/") == ["smoke/blob"]


def test_s3_over_tls_with_the_ca_bundle(ceph: CephS3, bucket: str):
    s3 = ceph.client(tls=True)

    s3.put_object(Bucket=bucket, Key="tls", Body=b"over https")

    assert s3.get_object(Bucket=bucket, Key="tls")["Body"].read() == b"over https"


def test_s3_wrong_secret_key_is_403(ceph: CephS3, bucket: str):
    s3 = ceph.client((ceph.access_key, "not-the-secret"))

    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="nope", Body=b"x")

    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_killed_gateway_comes_back(ceph: CephS3, bucket: str):
    ceph.client().put_object(Bucket=bucket, Key="survivor", Body=b"still here")

    ceph.kill_rgw()
    assert not ceph.rgw_running
    ceph.restart_rgw()

    assert ceph.client().get_object(Bucket=bucket, Key="survivor")["Body"].read() == b"still here"
