"""Backups to an HTTPS endpoint signed by a private CA: the chain travels once, by id.

The s3-integrator publishes the location's CA chain; the manager writes it once in
`tls-ca-chains` and names it in each job's `storage-config.tls-ca-chain-id`; mysql-server
resolves the id and its workers upload over TLS trusting that chain (the throwaway CA is in
no system store: without the chain the upload fails certificate verification).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ops import testing

from database_backup.interface import codec
from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name

from .data import Servers, create_shop
from .harness import S3Location, TwoCharms
from .provider import ENDPOINT


@dataclasses.dataclass(frozen=True)
class TlsLocation(S3Location):
    """An s3-integrator that also publishes the endpoint's CA chain."""

    ca_chain: str = ""

    def relation(self) -> tuple[testing.Relation, testing.Secret]:
        """The relation data with `tls-ca-chain` (a JSON list, as the charmlib sends it)."""
        relation, secret = super().relation()
        data = {**relation.remote_app_data, "tls-ca-chain": json.dumps([self.ca_chain])}
        return dataclasses.replace(relation, remote_app_data=data), secret


def test_backups_over_tls_name_the_ca_chain_once(
    ceph: CephS3, servers: Servers, tmp_path: Path
) -> None:
    assert ceph.ca_bundle is not None
    chain = ceph.ca_bundle.read_text().strip()
    bucket = unique_bucket_name("tls")
    ceph.create_bucket(bucket)
    location = TlsLocation(
        "region-tls", ceph.tls_endpoint, bucket, ceph.access_key, ceph.secret_key,
        ceph.region, ca_chain=chain,
    )  # fmt: skip
    harness = TwoCharms(tmp_path, [location], config={"backup-schedule": ""}, log=print)
    with harness.running():
        db = servers("tls")
        create_shop(db)
        deployment = harness.deploy("mysql-server", db)
        harness.relate(deployment)
        full = harness.action("create-backup")["job-id"]
        harness.settle()  # the first backup claims the empty prefix before the second runs
        logical = harness.action("create-backup", kind="logical", databases=["shop"])["job-id"]
        harness.pump()
        (relation,) = [r for r in harness.state.relations if r.endpoint == ENDPOINT]
        assert isinstance(relation, testing.Relation)
        bag = dict(relation.local_app_data)
        harness.settle()
        outcomes = {job: harness.job(job) for job in (full, logical)}

    chains = json.loads(bag["tls-ca-chains"])
    assert list(chains) == [codec.ca_chain_id(chain)]
    jobs = json.loads(bag["jobs"])
    assert {job["storage-config"]["tls-ca-chain-id"] for job in jobs} == set(chains)
    assert "BEGIN CERTIFICATE" not in bag["jobs"]
    for job_id, record in outcomes.items():
        assert record["status"] == "success", (job_id, record.get("message"))
