"""Both packed charms, one model: relate, back up, see the refusal come back, act on it.

One deployment for the module (each dispatch costs a python start and the charm's
imports, about a second): the fixture plays the hooks in the order Juju would, keeping
every run, and each test checks one part of the outcome. A real S3 endpoint (Ceph RGW,
tests/infra) makes the manager's bucket checks pass; the database machines have no
server installed (package tools refuse), so the provider refuses the job with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name

from .deployment import ActionRun, Deployment, Run

ROTATED = "rotated-secret-key"
MANAGER = "backup-manager"
DB = "mysql-server"


@dataclass
class Flow:
    """The deployment after the module's hooks, and every dispatch it ran."""

    model: Deployment
    rel: int
    runs: list[Run] = field(default_factory=list)
    actions: dict[str, ActionRun] = field(default_factory=dict)

    def hook(self, unit: str, hook: str, relation: int | None = None, remote: str = "") -> Run:
        run = self.model.hook(unit, hook, relation=relation, remote_unit=remote or None)
        self.runs.append(run)
        return run

    def action(self, name: str, unit: str, action: str, **params: object) -> ActionRun:
        run = self.model.action(unit, action, **params)
        self.runs.append(run)
        self.actions[name] = run
        return run


@pytest.fixture(scope="module")
def flow(new_deployment: Callable[[], Deployment], ceph: CephS3) -> Flow:
    model = new_deployment()
    bucket = unique_bucket_name("dispatch")
    user = ceph.create_user(bucket)
    ceph.create_bucket(bucket, user)
    credentials = model.user_secret(
        {"access-key": user.access_key, "secret-key": user.secret_key}, MANAGER
    )
    config = {"s3-bucket": bucket, "s3-endpoint": ceph.endpoint, "s3-credentials": credentials}
    managers = model.add_app(MANAGER, MANAGER, units=2, config=config)
    dbs = model.add_app(DB, DB)
    model.peer(MANAGER, "manager-peers")
    model.peer(DB, "mysql-peers")
    flow = Flow(model, model.relate(MANAGER, "database-backup", DB, "database-backup"))

    for unit in (*managers, *dbs):
        flow.hook(unit, "install")
    for unit in managers:
        flow.hook(unit, "database-backup-relation-joined", relation=flow.rel, remote=dbs[0])
    flow.hook(dbs[0], "database-backup-relation-changed", relation=flow.rel, remote=managers[0])
    flow.action("backup", managers[0], "create-backup", kind="full")
    flow.action("follower-backup", managers[1], "create-backup")
    # the leader assigns the job to itself and refuses it (nothing installed); the
    # manager's leader reads the refusal
    flow.hook(dbs[0], "database-backup-relation-changed", relation=flow.rel, remote=managers[0])
    flow.hook(managers[0], "database-backup-relation-changed", relation=flow.rel, remote=dbs[0])
    flow.action("list-jobs", managers[0], "list-jobs")
    flow.action("list-backups", managers[0], "list-backups")
    flow.action("restore-nothing", managers[0], "restore")
    flow.action("restore-bad-time", managers[0], "restore", **{"point-in-time": "at noon"})
    flow.action("show-jobs", dbs[0], "show-jobs")
    flow.action("shipping-status", dbs[0], "shipping-status")
    flow.action("cancel-unknown", dbs[0], "cancel-job", **{"job-id": "no-such-job"})
    for unit in (managers[0], dbs[0]):
        flow.hook(unit, "update-status")
    # the admin rotates the S3 keys in the user secret
    model.rotate_user_secret(credentials, {"access-key": "AK-NEW", "secret-key": ROTATED})
    secret_env = {"JUJU_SECRET_ID": credentials, "JUJU_SECRET_REVISION": "2"}
    flow.runs.append(model.hook(managers[0], "secret-changed", extra_env=secret_env))
    return flow


def test_every_dispatch_exits_0_without_a_traceback(flow: Flow):
    print("\n".join(f"{r.seconds:5.1f}s {r.unit} {r.path}" for r in flow.runs))
    for run in flow.runs:
        run.check()


def test_the_leader_publishes_the_request_and_grants_its_secrets(flow: Flow):
    app_bag = flow.model.bag(flow.rel, MANAGER)
    shipping = json.loads(app_bag["log-shipping"])
    secret_id = shipping["storage-config"]["credentials-secret-id"]
    secret = flow.model.state["secrets"][secret_id]

    assert app_bag["cluster-id"].endswith(f"/{DB}")
    assert secret["owner"] == MANAGER
    assert DB in secret["grants"]
    assert f"{DB}/0" in secret["consumers"]  # it read the secret through the grant
    assert flow.model.bag(flow.rel, f"{MANAGER}/1") == {}


def test_rotated_keys_reach_the_secret_granted_to_the_database(flow: Flow):
    [granted] = [
        s for s in flow.model.state["secrets"].values() if s["label"] == "credentials-default"
    ]

    assert granted["revisions"][-1] == {"access-key": "AK-NEW", "secret-key": ROTATED}
    assert len(granted["revisions"]) == 2


def test_create_backup_on_the_leader_sends_one_job(flow: Flow):
    run = flow.actions["backup"]
    jobs = json.loads(flow.model.bag(flow.rel, MANAGER)["jobs"])

    assert run.failed is None, run.failed
    assert [job["job-id"] for job in jobs] == [run.results["job-id"]]
    assert jobs[0]["job-type"] == "backup"


def test_create_backup_on_a_follower_is_refused(flow: Flow):
    run = flow.actions["follower-backup"]

    assert run.failed is not None
    assert "leader" in run.failed


def test_the_provider_refuses_the_job_with_the_reason(flow: Flow):
    job_id = flow.actions["backup"].results["job-id"]
    reported = [
        status
        for unit in (f"{DB}/0",)
        for status in json.loads(flow.model.bag(flow.rel, unit).get("jobs", "[]"))
        if status["job-id"] == job_id
    ]

    assert len(reported) == 1, "exactly one unit reports the job"
    assert reported[0]["status"] == "error"
    assert "install" in reported[0]["message"]  # what is wrong and what to do


def test_list_jobs_shows_the_refused_job(flow: Flow):
    run = flow.actions["list-jobs"]
    job_id = flow.actions["backup"].results["job-id"]

    assert run.failed is None, run.failed
    text = json.dumps(run.results)
    assert job_id in text
    assert "install" in text


def test_list_backups_of_an_empty_bucket(flow: Flow):
    run = flow.actions["list-backups"]

    assert run.failed is None, run.failed


@pytest.mark.parametrize(
    ("name", "expected"),
    [("restore-nothing", "backup-id"), ("restore-bad-time", "point-in-time")],
)
def test_restore_refuses_bad_input_and_sends_nothing(flow: Flow, name: str, expected: str):
    run = flow.actions[name]
    jobs = json.loads(flow.model.bag(flow.rel, MANAGER)["jobs"])

    assert run.failed is not None
    assert expected in run.failed
    assert [job["job-type"] for job in jobs] == ["backup"]


def test_mysql_actions(flow: Flow):
    assert flow.actions["show-jobs"].failed is None
    assert flow.actions["shipping-status"].failed is None
    assert flow.actions["shipping-status"].results["running"] == "False"
    assert "no-such-job" in (flow.actions["cancel-unknown"].failed or "")


def test_the_database_units_block_saying_what_is_missing(flow: Flow):
    status, message = flow.model.status(f"{DB}/0")

    assert status == "blocked", message
    assert "install" in message
    tools = [call[1] for call in flow.model.state["calls"] if call[0] == f"{DB}/0"]
    assert len(flow.model.calls(f"{DB}/0", "apt-get")) >= 2, tools  # tried again later


def test_no_secret_in_logs_databags_results_or_command_lines(flow: Flow):
    state = flow.model.state
    [user_secret] = [s for s in state["secrets"].values() if s["owner"] == "<model>"]
    outputs = [run.stdout + run.stderr for run in flow.runs]
    text = json.dumps([state["log"], state["relations"], state["calls"], outputs])
    results = json.dumps([run.results for run in flow.actions.values()])

    for revision in user_secret["revisions"]:
        assert revision["secret-key"] not in text
        assert revision["secret-key"] not in results
