"""Both charms' real code, wired together through Scenario, on a real MariaDB and a real RGW.

The backup-manager (requirer) and each mysql-server deployment (provider) keep their own
Scenario `State` between hooks. After every hook the harness plays Juju's part:

- the manager's `database-backup` app and unit databags become the provider's remote data,
  and the provider unit's databag becomes the manager's remote unit data; each change fires
  `relation-changed` on the other side;
- the secrets the manager owns and has granted on that relation (storage credentials, the
  encryption key) appear in the provider's state as secrets of another application;
- a worker's hand-back (`juju-exec ... job-finished` in production) fires the provider's
  `job-finished`; a finished copy worker is picked up by the manager's `update-status`,
  as on a real unit; `update-status` also runs as the safety net while jobs run.

`settle()` repeats this until both sides are quiet: no databag or secret change to carry,
no job worker and no copy worker running. Every unit status change, job status change and
action result is reported through `log` (the demo prints them; the tests keep them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ops import testing
from scenario.state import _Event

from backup_manager import copying, history, retention_jobs, schedule
from tests.charms import manager_charm_module
from tests.e2e.provider import APP, ENDPOINT, Deployment
from tests.infra.mariadb import MariaDBServer

MANAGER = "backup-manager"
MANAGER_PEER = "manager-peers"
MODEL = testing.Model(name="backups", uuid="5d2a8c1e-7b3f-4e69-a1d0-3c9b8e7f6a52")
UPDATE_STATUS_EVERY = 10.0  # seconds, while jobs run (the safety net)
SECRET_RESULTS = {"key"}  # action results never written to the transcript (export-encryption-key)


class ActionError(Exception):
    """A manager action failed (`event.fail`); the message is what the admin sees."""


@dataclasses.dataclass(frozen=True)
class S3Location:
    """An s3-integrator application the manager is related to: one storage location."""

    name: str
    endpoint: str
    bucket: str
    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)
    region: str = "default"
    path: str = "backups"

    def relation(self) -> tuple[testing.Relation, testing.Secret]:
        """The relation as object-storage-charmlib's provider publishes it, and its secret."""
        secret = testing.Secret(
            tracked_content={"access-key": self.access_key, "secret-key": self.secret_key}
        )
        data = {
            "version": "1",
            "bucket": self.bucket,
            "endpoint": self.endpoint,
            "region": self.region,
            "path": self.path,
            "secret-extra": secret.id,
        }
        relation = testing.Relation(
            "s3", interface="s3", remote_app_name=self.name, remote_app_data=data
        )
        return relation, secret


class Status(Protocol):
    """A unit status as Scenario reports it."""

    @property
    def name(self) -> str:
        """`active`, `blocked`, ..."""
        ...

    @property
    def message(self) -> str:
        """The status message."""
        ...


def describe(status: Status) -> str:
    """`active: message` as `juju status` shows a unit's status."""
    return f"{status.name}: {status.message}" if status.message else status.name


class TwoCharms:
    """The backup-manager and mysql-server deployments, exchanging data until quiet."""

    def __init__(
        self,
        root: Path,
        locations: Sequence[S3Location],
        *,
        config: Mapping[str, Any] | None = None,
        log: Callable[[str], None] = lambda line: None,
        model: testing.Model = MODEL,
        secrets: Sequence[testing.Secret] = (),
    ) -> None:
        """The manager in `model` (another uuid: another model), related to `locations`.

        `secrets`: user secrets the admin added and granted to it (an encryption key).
        """
        self.root = root
        self.model = model
        self.log_sink = log
        self.transcript: list[str] = []
        self.hooks: list[str] = []  # every hook run, with its time: for failure reports
        self.deployments: list[Deployment] = []
        self._links: dict[str, int] = {}  # deployment name -> manager-side relation id
        self._statuses: dict[str, str] = {}
        self._jobs: dict[str, str] = {}
        self.ctx = testing.Context(manager_charm_module().BackupManagerCharm, app_name=MANAGER)
        relations: list[testing.RelationBase] = [testing.PeerRelation(MANAGER_PEER)]
        secrets = list(secrets)
        for location in locations:
            relation, secret = location.relation()
            relations.append(relation)
            secrets.append(secret)
        self.state: testing.State = testing.State(
            leader=True,
            config=dict(config or {}),
            relations=relations,
            secrets=secrets,
            model=model,
        )

    # -- lifecycle ----------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[TwoCharms]:
        """Private cron dir, log and copy state for the manager; boots it; stops workers."""
        saved = (schedule.CRON_DIR, schedule.LOG_DIR, copying.STATE_DIR)
        schedule.CRON_DIR = self.root / "manager" / "cron.d"
        schedule.LOG_DIR = self.root / "manager" / "log"
        copying.STATE_DIR = self.root / "manager" / "state"
        try:
            self._boot_manager()
            yield self
        finally:
            schedule.CRON_DIR, schedule.LOG_DIR, copying.STATE_DIR = saved
            for deployment in self.deployments:
                self._stop_workers(deployment)

    def _boot_manager(self) -> None:
        self.manager_event("install", self.ctx.on.install())
        peer = self.state.get_relations(MANAGER_PEER)[0]
        self.manager_event("manager-peers-relation-created", self.ctx.on.relation_created(peer))
        self.manager_event("leader-elected", self.ctx.on.leader_elected())
        self.manager_event("config-changed", self.ctx.on.config_changed())
        for relation in self.state.get_relations("s3"):
            assert isinstance(relation, testing.Relation)
            event = self.ctx.on.relation_changed(relation, remote_unit=0)
            self.manager_event(f"s3-relation-changed ({relation.remote_app_name})", event)
        self.manager_event("start", self.ctx.on.start())

    def deploy(self, name: str, db: MariaDBServer, app: str = APP) -> Deployment:
        """A mysql-server deployment `app` on `db`, installed and started (not related yet)."""
        deployment = Deployment(name, db, self.root / name, self.model, app)
        self.deployments.append(deployment)
        ctx = deployment.ctx
        for hook, event in (
            ("install", ctx.on.install()),
            ("leader-elected", ctx.on.leader_elected()),
            ("config-changed", ctx.on.config_changed()),
            ("start", ctx.on.start()),
        ):
            self.provider_event(deployment, hook, event)
        return deployment

    def relate(self, deployment: Deployment) -> None:
        """`juju integrate backup-manager:database-backup mysql-server`, then settle."""
        self.note(
            f"$ juju integrate {MANAGER}:{ENDPOINT} {deployment.app}   # ({deployment.name})"
        )
        mine = testing.Relation(
            ENDPOINT, interface="database_backup", remote_app_name=deployment.app
        )
        theirs = testing.Relation(ENDPOINT, interface="database_backup", remote_app_name=MANAGER)
        self._links[deployment.name] = mine.id
        self.state = dataclasses.replace(self.state, relations=[*self.state.relations, mine])
        deployment.state = dataclasses.replace(
            deployment.state, relations=[*deployment.state.relations, theirs]
        )
        for hook in ("relation-created", "relation-joined"):
            name = f"{ENDPOINT}-{hook}"
            if hook == "relation-created":
                self.manager_event(name, self.ctx.on.relation_created(mine))
                self.provider_event(deployment, name, deployment.ctx.on.relation_created(theirs))
            else:
                self.manager_event(name, self.ctx.on.relation_joined(mine, remote_unit=0))
                event = deployment.ctx.on.relation_joined(theirs, remote_unit=0)
                self.provider_event(deployment, name, event)
        self.settle()

    def unrelate(self, deployment: Deployment) -> None:
        """`juju remove-application mysql-server` (its relation goes first), then settle."""
        self.note(f"$ juju remove-application {deployment.app}   # ({deployment.name})")
        relation = self._manager_relation(deployment)
        self.manager_event(
            f"{ENDPOINT}-relation-departed",
            self.ctx.on.relation_departed(relation, remote_unit=0, departing_unit=0),
        )
        self.manager_event(f"{ENDPOINT}-relation-broken", self.ctx.on.relation_broken(relation))
        others = [r for r in self.state.relations if r.id != relation.id]
        self.state = dataclasses.replace(self.state, relations=others)
        del self._links[deployment.name]
        self._stop_workers(deployment)
        self.deployments.remove(deployment)

    def configure(self, **options: Any) -> None:
        """`juju config backup-manager key=value...`, then settle."""
        shown = " ".join(f"{k}={v}" for k, v in options.items())
        self.note(f"$ juju config {MANAGER} {shown}")
        self.state = dataclasses.replace(self.state, config={**self.state.config, **options})
        self.manager_event("config-changed", self.ctx.on.config_changed())
        self.settle()

    # -- running hooks ------------------------------------------------------------------

    def note(self, line: str) -> None:
        """Add a line to the transcript (and the log sink)."""
        self.transcript.append(line)
        self.log_sink(line)

    def manager_event(self, name: str, event: Any) -> testing.State:
        """Run one hook of the manager's leader unit."""
        self.state = self.ctx.run(event, self.state)
        self.hooks.append(f"{time.time():.3f} {MANAGER}/0 {name}")
        self._after_manager(name)
        return self.state

    def provider_event(self, deployment: Deployment, name: str, event: Any) -> testing.State:
        """Run one hook of a deployment's unit."""
        deployment.state = deployment.ctx.run(event, deployment.state)
        self.hooks.append(f"{time.time():.3f} {deployment.unit} ({deployment.name}) {name}")
        self._status(deployment.unit, deployment.state.unit_status, name, deployment.name)
        return deployment.state

    def _after_manager(self, name: str) -> None:
        self._status(f"{MANAGER}/0", self.state.unit_status, name)
        for record in self.history():
            job_id = str(record.get("job-id"))
            status = str(record.get("status"))
            if self._jobs.get(job_id) == status:
                continue
            self._jobs[job_id] = status
            kind = f" {record['kind']}" if record.get("kind") else ""
            backup = f" {record['backup-id']}" if record.get("backup-id") else ""
            extra = record.get("message") or record.get("phase") or ""
            extra = f"; {extra}" if extra else ""
            self.note(f"  [job] {job_id} ({record.get('type')}{kind}{backup}): {status}{extra}")

    def _status(self, unit: str, status: Status, hook: str, key: str | None = None) -> None:
        text = describe(status)
        if self._statuses.get(key or unit) != text:
            self._statuses[key or unit] = text
            self.note(f"  [status] {unit}: {text}   (after {hook})")

    # -- actions ------------------------------------------------------------------------

    def action(self, name: str, **params: Any) -> dict[str, Any]:
        """`juju run backup-manager/leader <name> ...`: the results, or ActionError."""
        shown = " ".join(f"{k}={_param(v)}" for k, v in params.items())
        self.note(f"$ juju run {MANAGER}/leader {name} {shown}".rstrip())
        try:
            self.state = self.ctx.run(self.ctx.on.action(name, params=params), self.state)
        except testing.ActionFailed as exc:
            if isinstance(exc.state, testing.State):
                self.state = exc.state
            self.note(f"  ERROR {exc.message}")
            self._after_manager(name)
            raise ActionError(exc.message) from None
        results = dict(self.ctx.action_results or {})
        for key, value in results.items():
            if key == "json":
                continue
            if key in SECRET_RESULTS:  # the admin copies it somewhere safe; no transcript
                self.note(f"  {key}: <{len(str(value))} characters, not shown>")
                continue
            text = str(value)
            if "\n" in text:
                self.note(f"  {key}:")
                for line in text.splitlines():
                    self.note(f"    {line}")
            else:
                self.note(f"  {key}: {text}")
        self._after_manager(name)
        return results

    def provider_action(self, deployment: Deployment, name: str, **params: Any) -> dict[str, Any]:
        """`juju run mysql-server/leader <name> ...` on a deployment's unit."""
        shown = " ".join(f"{k}={_param(v)}" for k, v in params.items())
        self.note(f"$ juju run {deployment.app}/leader {name} {shown}".rstrip())
        ctx = deployment.ctx
        deployment.state = ctx.run(ctx.on.action(name, params=params), deployment.state)
        results = dict(ctx.action_results or {})
        for key, value in sorted(results.items()):
            self.note(f"  {key}: {value}")
        return results

    def history(self) -> list[dict[str, Any]]:
        """The manager's job history (what list-jobs shows)."""
        peer = self.state.get_relations(MANAGER_PEER)[0]
        assert isinstance(peer, testing.PeerRelation)
        return json.loads(peer.local_app_data.get("history", "[]"))

    def job(self, job_id: str) -> dict[str, Any]:
        """One job's history record."""
        return next(r for r in self.history() if r.get("job-id") == job_id)

    # -- the exchange -------------------------------------------------------------------

    def pump(self) -> None:
        """Carry every pending databag and secret change, without waiting for any worker."""
        while self._exchange():
            pass

    def settle(self, timeout: float = 240.0) -> None:
        """Carry data both ways and wait for workers until nothing moves any more."""
        deadline = time.monotonic() + timeout
        last_safety_net = time.monotonic()
        while True:
            if self._exchange():
                continue
            acted, busy = self._workers()
            if acted:
                continue
            if not busy:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(d.worker_logs() for d in self.deployments)
                raise TimeoutError(f"the charms did not settle in {timeout:.0f} s:\n{logs}")
            if time.monotonic() - last_safety_net > UPDATE_STATUS_EVERY:
                last_safety_net = time.monotonic()
                self.manager_event("update-status", self.ctx.on.update_status())
                for deployment in self.deployments:
                    event = deployment.ctx.on.update_status()
                    self.provider_event(deployment, "update-status", event)
                continue
            time.sleep(0.1)

    def _workers(self) -> tuple[bool, bool]:
        """Hand back ended jobs, copies, retention runs: (a hook ran, a worker still runs)."""
        acted = busy = False
        for deployment in list(self.deployments):
            count, waiting = deployment.hand_backs()
            if count:
                deployment.handled += count
                self.provider_event(deployment, "job-finished", _Event("job_finished"))
                acted = True
            elif waiting:
                busy = True
        copies, runs = self._copies(), self._retention_runs()
        if copies or runs:
            ended = [copying.worker_ended(copying.STATE_DIR, c) for c in copies]
            ended += [retention_jobs.worker_ended(copying.STATE_DIR, r) for r in runs]
            if any(ended):
                self.manager_event("update-status", self.ctx.on.update_status())
                acted = True
            else:
                busy = True
        return acted, busy

    def _copies(self) -> list[str]:
        peer = self.state.get_relations(MANAGER_PEER)[0]
        assert isinstance(peer, testing.PeerRelation)
        return list(json.loads(peer.local_app_data.get("copies", "{}")))

    def _retention_runs(self) -> list[str]:
        """The manager's retention runs not yet collected (their workers run or ended)."""
        peer = self.state.get_relations(MANAGER_PEER)[0]
        assert isinstance(peer, testing.PeerRelation)
        return retention_jobs.running(history.load(peer.local_app_data.get("history")))

    def _manager_relation(self, deployment: Deployment) -> testing.Relation:
        relation = self.state.get_relation(self._links[deployment.name])
        assert isinstance(relation, testing.Relation)
        return relation

    def _granted(self, relation_id: int) -> list[testing.Secret]:
        """The manager's secrets granted on that relation, as the provider sees them."""
        return [
            testing.Secret(tracked_content=dict(s.latest_content or s.tracked_content), id=s.id)
            for s in self.state.secrets
            if s.owner == "app" and relation_id in s.remote_grants
        ]

    def _exchange(self) -> bool:
        """Carry one change across (manager -> provider first); True if anything moved."""
        for deployment in self.deployments:
            if deployment.name not in self._links:
                continue
            mine = self._manager_relation(deployment)
            theirs = deployment.relation()
            assert theirs is not None
            if self._to_provider(deployment, mine, theirs):
                return True
            if self._to_manager(deployment, mine, theirs):
                return True
        return False

    def _to_provider(
        self, deployment: Deployment, mine: testing.Relation, theirs: testing.Relation
    ) -> bool:
        foreign = {s.id: s for s in self._granted(mine.id)}
        own = [s for s in deployment.state.secrets if s.owner is not None]
        known = {s.id: s for s in deployment.state.secrets if s.owner is None}
        changed_secrets = [
            s
            for s in foreign.values()
            if s.id in known and known[s.id].tracked_content != s.tracked_content
        ]
        data_changed = dict(theirs.remote_app_data) != dict(mine.local_app_data) or dict(
            theirs.remote_units_data.get(0, {})
        ) != dict(mine.local_unit_data)
        if not data_changed and not changed_secrets and set(foreign) == set(known):
            return False
        updated = dataclasses.replace(
            theirs,
            remote_app_data=dict(mine.local_app_data),
            remote_units_data={0: dict(mine.local_unit_data)},
        )
        others = [r for r in deployment.state.relations if r.id != theirs.id]
        deployment.state = dataclasses.replace(
            deployment.state,
            relations=[*others, updated],
            secrets=[*own, *foreign.values()],
        )
        ctx = deployment.ctx
        for secret in changed_secrets:
            self.provider_event(deployment, "secret-changed", ctx.on.secret_changed(secret))
        if data_changed:
            event = ctx.on.relation_changed(updated, remote_unit=0)
            self.provider_event(deployment, f"{ENDPOINT}-relation-changed", event)
        return True

    def _to_manager(
        self, deployment: Deployment, mine: testing.Relation, theirs: testing.Relation
    ) -> bool:
        unit_data = dict(theirs.local_unit_data)
        app_data = dict(theirs.local_app_data)
        if dict(mine.remote_units_data.get(0, {})) == unit_data and (
            dict(mine.remote_app_data) == app_data
        ):
            return False
        updated = dataclasses.replace(
            mine, remote_units_data={0: unit_data}, remote_app_data=app_data
        )
        others = [r for r in self.state.relations if r.id != mine.id]
        self.state = dataclasses.replace(self.state, relations=[*others, updated])
        event = self.ctx.on.relation_changed(updated, remote_unit=0)
        self.manager_event(f"{ENDPOINT}-relation-changed", event)
        return True

    # -- binlog shipping ----------------------------------------------------------------

    def ship_binlogs(self, deployment: Deployment) -> None:
        """The shipping timer fires on the unit (if the charm enabled it), then a hook runs."""
        result = deployment.fire_shipping_timer()
        if result is None:
            self.note(f"  [timer] {deployment.unit}: binlog shipping is not enabled")
        else:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            self.note(f"  [timer] {deployment.unit}: ship-binlogs exit {result.returncode}")
            if result.returncode != 0:
                raise AssertionError(f"ship-binlogs failed: {tail[0]}")
        self.provider_event(deployment, "update-status", deployment.ctx.on.update_status())
        self.settle()

    def update_status(self) -> None:
        """update-status on every unit, then settle."""
        self.manager_event("update-status", self.ctx.on.update_status())
        for deployment in self.deployments:
            self.provider_event(deployment, "update-status", deployment.ctx.on.update_status())
        self.settle()

    def _stop_workers(self, deployment: Deployment) -> None:
        deadline = time.monotonic() + 120
        while deployment.running() and time.monotonic() < deadline:
            time.sleep(0.1)


def _param(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
