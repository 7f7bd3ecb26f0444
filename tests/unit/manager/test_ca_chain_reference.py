"""The manager names a location's CA chain by id in each job: the chain is sent once.

Every job's `storage-config` used to carry the location's whole `tls-ca-chain` PEM; with
20 jobs in flight and 10 finished that is 30 copies in the databag every hook reads.
"""

from __future__ import annotations

import hashlib
import json

from .fakes import FakeS3
from .helpers import db_relation, s3_relation, state
from .test_actions import run_action

PEM = "-----BEGIN CERTIFICATE-----\n" + "MIIB" * 300 + "\n-----END CERTIFICATE-----"


def test_jobs_name_the_locations_chain_and_the_bag_holds_it_once(s3: FakeS3):
    rel, secret = s3_relation(**{"tls-ca-chain": json.dumps([PEM])})
    db = db_relation()
    st = state(rel, db, secrets=[secret])
    _, st = run_action("create-backup", st)
    _, st = run_action("create-backup", st, kind="logical", databases=["shop"])

    data = st.get_relation(db.id).local_app_data
    chains = json.loads(data["tls-ca-chains"])
    (chain_id,) = chains
    assert chain_id == hashlib.sha256(chains[chain_id].encode()).hexdigest()[:16]
    assert chains[chain_id].startswith("-----BEGIN CERTIFICATE-----\nMIIB")
    jobs = json.loads(data["jobs"])
    assert len(jobs) == 2
    assert [job["storage-config"]["tls-ca-chain-id"] for job in jobs] == [chain_id, chain_id]
    assert "MIIB" not in data["jobs"]
