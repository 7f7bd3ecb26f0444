"""Smoke tests of the workload fixtures: the real MariaDB and the real S3 gateway answer."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from tests.infra.mariadb import MariaDBServer
from tests.workload.conftest import CephEnv


def test_mariadb_answers_a_query(mariadb: MariaDBServer):
    mariadb.execute(
        "CREATE DATABASE shop;"
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name TEXT);"
        "INSERT INTO shop.items SELECT seq, CONCAT('item-', seq) FROM shop.seq_1_to_1000;"
    )

    assert mariadb.scalar("SELECT COUNT(*) FROM shop.items") == "1000"
    assert mariadb.scalar("SELECT name FROM shop.items WHERE id = 42") == "item-42"
    assert mariadb.scalar("SELECT @@log_bin") == "1"
    assert "MariaDB" in (mariadb.scalar("SELECT VERSION()") or "")


def test_s3_put_get_roundtrip(ceph: CephEnv):
    body = os.urandom(3 * 1024 * 1024)
    s3 = ceph.client()

    s3.put_object(Bucket=ceph.bucket, Key="smoke/blob", Body=body)
    got = s3.get_object(Bucket=ceph.bucket, Key="smoke/blob")["Body"].read()

    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    assert ceph.keys(prefix="smoke/") == ["smoke/blob"]


def test_s3_over_tls_with_the_ca_bundle(ceph: CephEnv):
    s3 = ceph.client(tls=True)

    s3.put_object(Bucket=ceph.bucket, Key="tls", Body=b"over https")

    assert s3.get_object(Bucket=ceph.bucket, Key="tls")["Body"].read() == b"over https"


def test_s3_wrong_secret_key_is_403(ceph: CephEnv):
    s3 = ceph.client(secret_key="not-the-secret")

    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=ceph.bucket, Key="nope", Body=b"x")

    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
