"""Provider side of `database_backup`: a database charm detects, assigns and reports jobs.

Flow, run on every relation-changed, peer-changed and leader-elected event (and whenever the
charm calls `reconcile()`):

1. every unit decodes the requirer's `jobs`; bad items become problems with a message;
2. the leader assigns each new job to exactly one unit (`assignment.choose_unit`: the
   primary, or for backups a replica when the charm names replicas), after asking the
   locking policy against the work running across the whole application;
   jobs that are invalid, duplicated or refused are assigned to the leader with the reason,
   so exactly one unit reports them, as `error`;
3. each unit reports the errors assigned to it, checks that the job's secrets can be read,
   and emits `job_requested` for each new job it must run. The charm starts the job and
   publishes `running` (and later the result) with `publish_status`.

The assignments live in the peer relation's application databag (readable by every unit);
each unit mirrors its jobs' states in its peer unit databag so the leader sees the whole
application's running work.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypedDict, cast

import ops

from . import codec, schemas
from .assignment import choose_unit
from .errors import DataValidationError, SecretUnavailableError
from .events import DatabaseBackupProviderEvents
from .locking import Work, may_start, work_of
from .model import JobRequest, JobState, JobStatus, StorageConfig
from .remote import remote_app
from .requirer import CLUSTER_ID_KEY, DEFAULT_ENDPOINT, LOG_SHIPPING_KEY, REQUEST_ERROR_KEY

logger = logging.getLogger(__name__)

ASSIGNMENTS_KEY = "database-backup-assignments"
UNIT_STATES_KEY = "database-backup-job-states"
MAX_MESSAGE = 2000  # the schema's limit on a status message


@dataclasses.dataclass(frozen=True)
class Credentials:
    """S3 credentials of a job; never printed."""

    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)


class _AssignmentUnit(TypedDict):
    unit: str


class AssignmentData(_AssignmentUnit, total=False):
    """One assignment as the peer databag holds it: the unit, and a refusal if any."""

    refusal: str


#: the peer databag's assignments: relation id -> job id -> assignment
Assignments = dict[str, dict[str, AssignmentData]]


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Which unit handles a job, and why it must fail if it must."""

    unit: str
    refusal: str | None = None

    def to_dict(self) -> AssignmentData:
        """Peer-databag form."""
        data = AssignmentData(unit=self.unit)
        if self.refusal:
            data["refusal"] = self.refusal
        return data


class DatabaseBackupProvider(ops.Object):
    """Run the jobs a backup manager requests, one unit per job.

    Where jobs run (the leader decides, `assignment.choose_unit`): every job runs on the
    primary (`primary=`, default the leader) unless the charm passes `replicas=`. Only a
    charm whose units replicate one server may pass it; backups then prefer the least
    loaded replica it names. Without `replicas=` the library treats the units as
    independent servers and never sends a backup to a non-leader unit, because restores
    and binlog shipping use the primary and a backup of another server would silently be
    a backup of the wrong data.

    Credentials: a job's `storage-config` names a Juju secret (`credentials-secret-id`);
    draft-style requirers' inline `access-key`/`secret-key` are accepted too. Inline keys
    are never echoed in a status, never logged, never quoted in an error and never stored
    in an event snapshot: `JobRequestedEvent` re-reads them from the relation. Get them with
    `credentials_for(job)` and pass them to the workload only through a private file.

    Args:
        charm: the database charm.
        relation_name: the `database_backup` provider endpoint.
        peer_relation_name: the charm's peer relation (required for more than one unit).
        replicas: returns the names of units that are replicas of the primary's data
            (preferred for backups). Omit it unless the units replicate one server.
        primary: returns the name of the primary unit (default: the leader). Restores,
            and backups when there is no replica, go there.
    """

    on = DatabaseBackupProviderEvents()

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = DEFAULT_ENDPOINT,
        *,
        peer_relation_name: str | None = None,
        replicas: Callable[[], Collection[str]] | None = None,
        primary: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(charm, f"database-backup-provider-{relation_name}")
        self._charm = charm
        self._relation_name = relation_name
        self._peer_name = peer_relation_name
        self._replicas = replicas or (lambda: ())
        self._primary = primary or (lambda: None)
        on = charm.on[relation_name]
        for event in (on.relation_changed, on.relation_joined, on.relation_departed):
            self.framework.observe(event, self._on_change)
        self.framework.observe(charm.on.leader_elected, self._on_change)
        if peer_relation_name:
            peer = charm.on[peer_relation_name]
            self.framework.observe(peer.relation_changed, self._on_change)
            self.framework.observe(peer.relation_departed, self._on_change)

    # ---------------------------------------------------------------- getters

    @property
    def relations(self) -> list[ops.Relation]:
        """Every relation on the endpoint."""
        return list(self._charm.model.relations[self._relation_name])

    def requests(self, relation: ops.Relation) -> codec.DecodedRequests:
        """The requirer's decoded jobs (valid ones and problems)."""
        app = remote_app(relation)
        if app is None:
            return codec.DecodedRequests()
        return codec.decode_bag(relation.data[app])

    def published(self, relation: ops.Relation) -> dict[str, JobStatus]:
        """The statuses this unit has published on `relation`, by job id."""
        decoded = codec.decode_statuses(relation.data[self._charm.unit].get(codec.JOBS_KEY))
        return {status.job_id: status for status in decoded.statuses}

    def assignments(self, relation: ops.Relation) -> dict[str, Assignment]:
        """The leader's assignments for `relation`, by job id."""
        raw = self._all_assignments().get(str(relation.id), {})
        return {job_id: Assignment(a["unit"], a.get("refusal")) for job_id, a in raw.items()}

    def pending_jobs(self, relation: ops.Relation) -> list[JobRequest]:
        """Jobs assigned to this unit, valid, not refused, with nothing published yet."""
        mine = self.assignments(relation)
        published = self.published(relation)
        me = self._charm.unit.name
        return [
            job
            for job in self.requests(relation).jobs
            if job.job_id in mine
            and mine[job.job_id].unit == me
            and mine[job.job_id].refusal is None
            and job.job_id not in published
        ]

    def running_work(self) -> list[Work]:
        """Work this unit runs now, across relations (for `locking.may_start`)."""
        work: list[Work] = []
        for relation in self.relations:
            requests = {job.job_id: job for job in self.requests(relation).jobs}
            for status in self.published(relation).values():
                if status.status is JobState.RUNNING and status.job_id in requests:
                    work.append(work_of(requests[status.job_id]))
        return work

    def log_shipping_request(self, relation: ops.Relation) -> dict[str, object] | None:
        """The requirer's log-shipping request, or None (invalid ones are logged, ignored)."""
        app = remote_app(relation)
        if app is None:
            return None
        raw = relation.data[app].get(LOG_SHIPPING_KEY)
        if not raw:
            return None
        try:
            value = json.loads(raw)
            schemas.validate(codec.without_inline_keys(value), schemas.REQUIRER, "log-shipping")
        except (json.JSONDecodeError, DataValidationError) as exc:
            logger.error("ignoring an invalid log-shipping request: %s", exc)
            return None
        storage = value.get("storage-config")
        if isinstance(storage, dict):
            config = cast("dict[str, Any]", storage)
            resolved = codec.resolve_ca_chain(
                StorageConfig.from_dict(config), relation.data[app].get(codec.CA_CHAINS_KEY)
            )
            if isinstance(resolved, str):
                logger.error("ignoring a log-shipping request: %s", resolved)
                return None
            if resolved.tls_ca_chain_id is not None:
                value["storage-config"] = {**config, "tls-ca-chain": resolved.tls_ca_chain}
        return value

    # ---------------------------------------------------------------- secrets

    def credentials_for(self, job: JobRequest) -> Credentials:
        """Resolve a job's storage credentials from its secret (or draft-style inline keys)."""
        return self.credentials_for_storage(job.storage)

    def credentials_for_storage(self, storage: StorageConfig) -> Credentials:
        """Resolve the credentials of a storage config (a job's, or log shipping's)."""
        if storage.credentials_secret_id:
            content = self._secret_content(storage.credentials_secret_id, "storage credentials")
            access, secret = content.get("access-key"), content.get("secret-key")
            if not access or not secret:
                raise SecretUnavailableError(
                    f"secret {storage.credentials_secret_id} must hold 'access-key' and "
                    "'secret-key'"
                )
            return Credentials(access, secret)
        access, secret = storage.inline_access_key, storage.inline_secret_key
        if access and secret:
            return Credentials(access, secret)
        if access or secret:
            given, missing = (
                ("access-key", "secret-key") if access else ("secret-key", "access-key")
            )
            raise SecretUnavailableError(
                f"storage-config has '{given}' without '{missing}': give both, or (better) "
                "a credentials-secret-id"
            )
        raise SecretUnavailableError(
            "no storage credentials were given: set credentials-secret-id in storage-config "
            "(a Juju secret with 'access-key' and 'secret-key' granted to "
            f"{self._charm.app.name}), or inline 'access-key' and 'secret-key'"
        )

    def encryption_key_for(self, job: JobRequest) -> bytes | None:
        """The job's encryption key (32 bytes) or None when the job is not encrypted."""
        return self.encryption_key(job.encryption_secret_id)

    def encryption_key(self, secret_id: str | None) -> bytes | None:
        """The 32-byte key held by secret `secret_id` (content `key`, base64), or None."""
        if not secret_id:
            return None
        content = self._secret_content(secret_id, "encryption key")
        try:
            key = base64.b64decode(content.get("key", ""), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise SecretUnavailableError(
                f"secret {secret_id} must hold 'key': 32 bytes, base64-encoded"
            )
        return key

    def cluster_id(self, relation: ops.Relation) -> str | None:
        """The cluster identity the requirer published (`cluster-id`), if valid."""
        app = remote_app(relation)
        if app is None:
            return None
        value = relation.data[app].get(CLUSTER_ID_KEY)
        if not value:
            return None
        try:
            schemas.validate({codec.JOBS_KEY: "[]", CLUSTER_ID_KEY: value}, schemas.REQUIRER)
        except DataValidationError as exc:
            logger.error("ignoring an invalid cluster-id: %s", exc)
            return None
        return value

    def publish_log_shipping(self, relation: ops.Relation, status: Mapping[str, Any]) -> None:
        """Validate and publish this unit's binlog-shipping state (`log-shipping` key)."""
        schemas.validate(dict(status), schemas.PROVIDER, "log-shipping-status")
        encoded = json.dumps(dict(status), sort_keys=True, separators=(",", ":"))
        data = relation.data[self._charm.unit]
        if data.get(LOG_SHIPPING_KEY) != encoded:
            data[LOG_SHIPPING_KEY] = encoded

    def _secret_content(self, secret_id: str, what: str) -> dict[str, str]:
        try:
            return self._charm.model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.SecretNotFoundError:
            raise SecretUnavailableError(
                f"the {what} secret {secret_id} does not exist or was not granted to "
                f"{self._charm.app.name}"
            ) from None
        except ops.ModelError as exc:
            raise SecretUnavailableError(
                f"the {what} secret {secret_id} cannot be read: {str(exc)[:200]}"
            ) from None

    # ---------------------------------------------------------------- writers

    def publish_status(self, relation: ops.Relation, status: JobStatus) -> None:
        """Validate and publish one job's status in this unit's databag (replacing any)."""
        current = self.published(relation)
        message = status.message
        if message is not None and len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        unit = status.unit or self._charm.unit.name
        current[status.job_id] = status.replace(unit=unit, message=message)
        self._write_statuses(relation, current.values())

    def reconcile(self) -> None:
        """Assign (leader), report errors and emit `job_requested` for new jobs of this unit."""
        if self._charm.unit.is_leader():
            self._assign_all()
        for relation in self.relations:
            self._handle_mine(relation)
        self._mirror_states()

    # ---------------------------------------------------------------- internals

    def _on_change(self, _: ops.EventBase) -> None:
        self.reconcile()

    def _peer(self) -> ops.Relation | None:
        if not self._peer_name:
            return None
        return self._charm.model.get_relation(self._peer_name)

    def _all_assignments(self) -> Assignments:
        peer = self._peer()
        if peer is None:
            return self._local_assignments
        try:
            value = json.loads(peer.data[self._charm.app].get(ASSIGNMENTS_KEY, "{}"))
        except json.JSONDecodeError:
            logger.error("the peer assignments are unreadable; starting afresh")
            return {}
        return cast("Assignments", value) if isinstance(value, dict) else {}

    @property
    def _local_assignments(self) -> Assignments:
        # Without a peer relation there is one unit: it runs everything. What it has
        # published counts as assigned; the work it runs now is what new jobs must respect.
        me = self._charm.unit.name
        result = {
            str(relation.id): self._fresh_assignments(
                relation, {job_id: {"unit": me} for job_id in self.published(relation)}
            )
            for relation in self.relations
        }
        self._assign_new(result, self.running_work())
        return result

    def _units(self) -> list[str]:
        units = [self._charm.unit.name]
        peer = self._peer()
        if peer is not None:
            units += [unit.name for unit in peer.units]
        return units

    def _work_across_app(self, assignments: Assignments) -> list[Work]:
        """Assigned, accepted work not known to be finished anywhere in the application."""
        finished = self._finished_everywhere()
        work: list[Work] = []
        for relation in self.relations:
            requests = {job.job_id: job for job in self.requests(relation).jobs}
            for job_id, assignment in assignments.get(str(relation.id), {}).items():
                key = f"{relation.id}/{job_id}"
                if assignment.get("refusal") or key in finished or job_id not in requests:
                    continue
                work.append(work_of(requests[job_id]))
        return work

    def _finished_everywhere(self) -> set[str]:
        peer = self._peer()
        sources = [self._unit_states(self._charm.unit, peer)]
        if peer is not None:
            sources += [self._unit_states(unit, peer) for unit in peer.units]
        return {key for states in sources for key, state in states.items() if state != "running"}

    def _unit_states(self, unit: ops.Unit, peer: ops.Relation | None) -> dict[str, str]:
        if peer is None:
            return {
                f"{relation.id}/{job_id}": status.status.value
                for relation in self.relations
                for job_id, status in self.published(relation).items()
            }
        try:
            value = json.loads(peer.data[unit].get(UNIT_STATES_KEY, "{}"))
        except json.JSONDecodeError:
            return {}
        return cast("dict[str, str]", value) if isinstance(value, dict) else {}

    def _assign_all(self) -> None:
        peer = self._peer()
        if peer is None:
            return
        previous = self._all_assignments()
        active = self._work_across_app(previous)
        result = {
            str(relation.id): self._fresh_assignments(relation, previous.get(str(relation.id), {}))
            for relation in self.relations
        }
        self._assign_new(result, active)
        encoded = json.dumps(result, sort_keys=True, separators=(",", ":"))
        if peer.data[self._charm.app].get(ASSIGNMENTS_KEY) != encoded:
            peer.data[self._charm.app][ASSIGNMENTS_KEY] = encoded

    def _fresh_assignments(
        self, relation: ops.Relation, known: dict[str, AssignmentData]
    ) -> dict[str, AssignmentData]:
        """Keep known assignments of still-requested jobs; fail bad jobs and lost units."""
        leader = self._charm.unit.name
        units = self._units()
        decoded = self.requests(relation)
        requested = {job.job_id for job in decoded.jobs}
        requested |= {p.job_id for p in decoded.problems if p.job_id}
        out = {job_id: a for job_id, a in known.items() if job_id in requested}
        for job_id, assignment in list(out.items()):
            if assignment["unit"] not in units and not assignment.get("refusal"):
                gone = assignment["unit"]
                refusal = f"unit {gone} left before it reported the job; request it again"
                out[job_id] = Assignment(leader, refusal).to_dict()
        for problem in decoded.problems:
            if problem.job_id and problem.job_id not in out:
                out[problem.job_id] = Assignment(leader, problem.message).to_dict()
        return out

    def _assign_new(self, result: Assignments, active: list[Work]) -> None:
        """Decide every new job, oldest request first, across all relations."""
        leader = self._charm.unit.name
        units = self._units()
        load: dict[str, int] = {}
        for per_relation in result.values():
            for assignment in per_relation.values():
                load[assignment["unit"]] = load.get(assignment["unit"], 0) + 1
        new: list[tuple[str, int, JobRequest]] = []
        for relation in self.relations:
            for job in self.requests(relation).jobs:
                if job.job_id not in result[str(relation.id)]:
                    new.append((job.requested_at or "", relation.id, job))
        for _, relation_id, job in sorted(new, key=lambda item: (item[0], item[1])):
            decision = may_start(active, work_of(job))
            if not decision.allowed:
                result[str(relation_id)][job.job_id] = Assignment(
                    leader, decision.reason
                ).to_dict()
                continue
            unit = choose_unit(
                job,
                units,
                leader=leader,
                replicas=set(self._replicas()),
                primary=self._primary(),
                load=load,
            )
            load[unit] = load.get(unit, 0) + 1
            active.append(work_of(job))
            result[str(relation_id)][job.job_id] = Assignment(unit).to_dict()

    def _handle_mine(self, relation: ops.Relation) -> None:
        decoded = self.requests(relation)
        leader = self._charm.unit.is_leader()
        if leader:
            self._publish_request_error(relation, decoded)
        if decoded.error:
            if leader:
                logger.error("relation %s: %s", relation.id, decoded.error)
            return
        me = self._charm.unit.name
        mine = {k: a for k, a in self.assignments(relation).items() if a.unit == me}
        published = self.published(relation)
        by_id = {job.job_id: job for job in decoded.jobs}
        requested = set(by_id) | {p.job_id for p in decoded.problems if p.job_id}
        statuses = {k: s for k, s in published.items() if k in requested}
        for job_id, assignment in mine.items():
            if job_id in statuses:
                continue
            job = by_id.get(job_id)
            if assignment.refusal is not None:
                statuses[job_id] = self._error_status(job_id, job, assignment.refusal)
                logger.warning("job %s refused: %s", job_id, assignment.refusal)
        self._write_statuses(relation, statuses.values(), only_if_changed=published)
        for job in self.pending_jobs(relation):
            problem = self._secret_problem(job)
            if problem:
                self.publish_status(relation, self._error_status(job.job_id, job, problem))
                logger.warning("job %s cannot run: %s", job.job_id, problem)
                continue
            self.on.job_requested.emit(relation, job)

    def _secret_problem(self, job: JobRequest) -> str | None:
        try:
            self.credentials_for(job)
            self.encryption_key_for(job)
        except SecretUnavailableError as exc:
            return str(exc)
        return None

    def _error_status(self, job_id: str, job: JobRequest | None, message: str) -> JobStatus:
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        if job is not None:
            return JobStatus.for_request(
                job, JobState.ERROR, message=message, unit=self._charm.unit.name
            )
        return JobStatus(job_id, JobState.ERROR, message=message, unit=self._charm.unit.name)

    def _publish_request_error(
        self, relation: ops.Relation, decoded: codec.DecodedRequests
    ) -> None:
        anonymous = [p for p in decoded.problems if not p.job_id]
        parts = [decoded.error] if decoded.error else []
        parts += [f"job #{p.index}: {p.message}" for p in anonymous]
        data = relation.data[self._charm.unit]
        message = "; ".join(p for p in parts if p)[:2000]
        if message:
            if data.get(REQUEST_ERROR_KEY) != message:
                data[REQUEST_ERROR_KEY] = message
        elif REQUEST_ERROR_KEY in data:
            del data[REQUEST_ERROR_KEY]
        if codec.JOBS_KEY not in data:
            data[codec.JOBS_KEY] = "[]"

    def _write_statuses(
        self,
        relation: ops.Relation,
        statuses: Iterable[JobStatus],
        *,
        only_if_changed: dict[str, JobStatus] | None = None,
    ) -> None:
        statuses = list(statuses)
        if only_if_changed is not None and {s.job_id: s for s in statuses} == only_if_changed:
            return
        relation.data[self._charm.unit][codec.JOBS_KEY] = codec.encode_statuses(statuses)
        self._mirror_states()

    def _mirror_states(self) -> None:
        peer = self._peer()
        if peer is None:
            return
        states = {
            f"{relation.id}/{job_id}": status.status.value
            for relation in self.relations
            for job_id, status in self.published(relation).items()
        }
        encoded = json.dumps(states, sort_keys=True, separators=(",", ":"))
        if peer.data[self._charm.unit].get(UNIT_STATES_KEY) != encoded:
            peer.data[self._charm.unit][UNIT_STATES_KEY] = encoded
