"""Fixtures for the workload tests: a real MariaDB server and a real S3 gateway (Ceph RGW).

Fixtures:

- `ceph_cluster` (session): the running `CephCluster` (one per test session).
- `ceph` (function): a `CephEnv`: the cluster plus a fresh, empty bucket for this test,
  emptied and removed afterwards; the gateway is restarted after the test if the test
  killed it.
- `mariadb_factory` (session): `mariadb_factory(name=None, **kwargs)` starts one more
  `MariaDBServer`; all are stopped at the end of the session.
- `mariadb` (function): a fresh, empty MariaDB server for this test (about 0.7 s).
- `mariadb_shared` (session): one server shared by the whole session (don't break it).
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.ceph import CephCluster, S3User
from tests.infra.mariadb import MariaDBServer

logger = logging.getLogger(__name__)

_bucket_counter = itertools.count()


@dataclass
class CephEnv:
    """What one test sees of the S3 gateway: the cluster, and a fresh bucket of its own.

    Attributes:
        cluster: the session's `CephCluster`.
        bucket: an empty bucket created for this test, owned by the admin user.
    """

    cluster: CephCluster
    bucket: str
    _extra_buckets: list[tuple[S3User | None, str]]

    @property
    def endpoint(self) -> str:
        """Plain HTTP endpoint URL, e.g. `http://127.0.0.1:PORT`."""
        return self.cluster.endpoint

    @property
    def tls_endpoint(self) -> str:
        """HTTPS endpoint URL (`https://localhost:PORT`), certificate signed by `ca_bundle`."""
        return self.cluster.tls_endpoint

    @property
    def ca_bundle(self) -> Path | None:
        """PEM file of the throwaway CA that signed the gateway's certificate."""
        return self.cluster.ca_bundle

    @property
    def region(self) -> str:
        """Region name to sign requests with."""
        return self.cluster.region

    @property
    def access_key(self) -> str:
        """Access key of the admin user (owner of `bucket`)."""
        return self.cluster.access_key

    @property
    def secret_key(self) -> str:
        """Secret key of the admin user."""
        return self.cluster.secret_key

    def client(self, user: S3User | None = None, **kwargs: Any) -> Any:
        """A plain boto3 S3 client (see `CephCluster.client`)."""
        return self.cluster.client(user, **kwargs)

    def create_user(self, uid: str | None = None) -> S3User:
        """Create another RGW user (another tenant, e.g. "another region's" account)."""
        return self.cluster.create_user(uid or f"user-{secrets.token_hex(4)}")

    def new_bucket(self, user: S3User | None = None, prefix: str = "extra") -> str:
        """Create one more empty bucket owned by `user` (admin by default), removed after."""
        name = _bucket_name(prefix)
        self.client(user).create_bucket(Bucket=name)
        self._extra_buckets.append((user, name))
        return name

    def kill_rgw(self) -> None:
        """SIGKILL the gateway (restarted automatically after the test)."""
        self.cluster.kill_rgw()

    def restart_rgw(self) -> None:
        """Start the gateway again after `kill_rgw`."""
        self.cluster.restart_rgw()

    def keys(self, bucket: str | None = None, prefix: str = "") -> list[str]:
        """All keys in `bucket` (this test's bucket by default) under `prefix`."""
        paginator = self.client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=bucket or self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def multipart_uploads(self, bucket: str | None = None, prefix: str = "") -> list[dict]:
        """Multipart uploads still open in `bucket` under `prefix`."""
        resp = self.client().list_multipart_uploads(Bucket=bucket or self.bucket, Prefix=prefix)
        return resp.get("Uploads", [])


def _bucket_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_bucket_counter)}-{secrets.token_hex(3)}"


def _empty_and_delete(client: Any, bucket: str) -> None:
    """Best effort: remove every object and open multipart upload, then the bucket."""
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except Exception as exc:
        logger.warning("could not remove bucket %s: %s", bucket, exc)


@pytest.fixture(scope="session")
def ceph_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephCluster]:
    """One Ceph cluster (mon + memstore OSD + RGW with HTTP and HTTPS) per session."""
    cluster = CephCluster(tmp_path_factory.mktemp("ceph"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ceph(ceph_cluster: CephCluster, request: pytest.FixtureRequest) -> Iterator[CephEnv]:
    """The S3 gateway with a fresh bucket for this test."""
    if not ceph_cluster.rgw_running:
        ceph_cluster.restart_rgw()
    name = _bucket_name(request.node.name.lower().replace("_", "-")[:20].strip("-[]") or "t")
    ceph_cluster.client().create_bucket(Bucket=name)
    env = CephEnv(cluster=ceph_cluster, bucket=name, _extra_buckets=[])
    yield env
    if not ceph_cluster.rgw_running:
        ceph_cluster.restart_rgw()
    _empty_and_delete(ceph_cluster.client(), name)
    for user, bucket in env._extra_buckets:
        _empty_and_delete(ceph_cluster.client(user), bucket)


@pytest.fixture(scope="session")
def mariadb_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MariaDBServer]]:
    """Start more MariaDB servers: `mariadb_factory(name=None, **MariaDBServer kwargs)`."""
    servers: list[MariaDBServer] = []
    counter = itertools.count(1)

    def start(name: str | None = None, **kwargs: Any) -> MariaDBServer:
        n = next(counter)
        kwargs.setdefault("server_id", n)
        server = MariaDBServer(tmp_path_factory.mktemp(name or f"mariadb{n}"), **kwargs)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        try:
            server.stop(timeout=20)
        except Exception as exc:
            logger.warning("could not stop mariadb on port %d: %s", server.port, exc)


@pytest.fixture
def mariadb(mariadb_factory: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A fresh MariaDB server for this test, stopped afterwards."""
    server = mariadb_factory()
    yield server
    server.stop(timeout=20)


@pytest.fixture(scope="session")
def mariadb_shared(mariadb_factory: Callable[..., MariaDBServer]) -> MariaDBServer:
    """One MariaDB server for the whole session (tests must not break it)."""
    return mariadb_factory("mariadb-shared")
