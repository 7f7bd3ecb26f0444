"""The metrics of backup health, from a plain snapshot to Prometheus exposition text.

Pure: `render(snapshot)` reads no file and no storage, so the alert-rule tests feed its
output to `promtool` and the server calls it at each scrape. Times are Unix seconds; ages
are computed from `Snapshot.now` (never negative). A value that is not known (no complete
backup, never drilled, no shipping, no schedule, no finished job) is absent, never 0.

Labels: `cluster` (the catalog's cluster id, `<model-uuid>/<app>`), `location` (the
storage location's name, `""` for the `default` one of the s3-* options), `job_type`
(`backup`, `restore`, `drill`, or `copy`: a cross-region copy of the cluster's backup).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

PREFIX = "database_backup_"
JOB_TYPES = ("backup", "restore", "drill", "copy")
DAY = 86400.0
LOCATION_LABELS = ("cluster", "location")
JOB_LABELS = ("cluster", "job_type")
CLUSTER_LABELS = ("cluster",)


@dataclasses.dataclass(frozen=True)
class LocationHealth:
    """What the catalog of one cluster at one storage location says.

    Attributes:
        cluster: the cluster id.
        location: the location's label value (`""` for the default location).
        catalog_up: whether the last read of this catalog worked.
        last_complete_at: finished-at of the newest complete backup.
        last_duration_seconds: how long that backup took.
        last_size_bytes: its stored size.
        complete_backups: how many complete backups there are.
        storage_bytes: bytes stored under the cluster's prefix (backups and binlogs).
        binlog_last_event_at: the later of the newest shipped binlog event and the
            shipper's last caught-up record (set only where the cluster ships binlogs to).
        read_at: when storage was read; the binlog lag is measured at that moment, so the
            read interval does not add to it (a stopped shipper shows at most one interval
            late, an idle database never crosses its limit between two reads).
        drill_passed: the newest drill's result (None: never drilled).
        drill_checked_at: when that drill checked.
    """

    cluster: str
    location: str
    catalog_up: bool
    last_complete_at: float | None = None
    last_duration_seconds: float | None = None
    last_size_bytes: int | None = None
    complete_backups: int | None = None
    storage_bytes: int | None = None
    binlog_last_event_at: float | None = None
    drill_passed: bool | None = None
    drill_checked_at: float | None = None
    read_at: float | None = None


@dataclasses.dataclass(frozen=True)
class JobHealth:
    """The finished jobs of one type for one cluster.

    Attributes:
        cluster: the cluster id.
        job_type: `backup`, `restore`, `drill` or `copy`.
        failed_at: when recent failed jobs finished (those within a day of `now` count).
        last_failed: whether the newest finished job failed (None: none finished).
    """

    cluster: str
    job_type: str
    failed_at: tuple[float, ...] = ()
    last_failed: bool | None = None

    def __post_init__(self) -> None:
        """Refuse a job type the metrics do not know."""
        if self.job_type not in JOB_TYPES:
            raise ValueError(f"job type {self.job_type!r} is not one of {', '.join(JOB_TYPES)}")


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """The manager's settings for one cluster (None: not set).

    Attributes:
        cluster: the cluster id.
        binlog_max_lag_seconds: the `binlog-max-lag` setting, when binlogs are shipped.
        schedule_max_interval_seconds: the longest gap between scheduled backups.
    """

    cluster: str
    binlog_max_lag_seconds: float | None = None
    schedule_max_interval_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything the metrics are made of, at the moment `now` (Unix seconds)."""

    now: float
    locations: tuple[LocationHealth, ...] = ()
    jobs: tuple[JobHealth, ...] = ()
    clusters: tuple[ClusterSettings, ...] = ()


def _age(now: float, moment: float) -> float:
    return max(0.0, now - moment)


def _gauge(name: str, documentation: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))


def _location_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    now = snapshot.now
    spec: list[tuple[str, str]] = [
        ("last_complete_timestamp_seconds", "Finished-at of the newest complete backup."),
        ("last_complete_age_seconds", "Seconds since the newest complete backup finished."),
        ("last_duration_seconds", "How long the newest complete backup took."),
        ("last_size_bytes", "Stored size of the newest complete backup."),
        ("complete_backups", "Number of complete backups in the catalog."),
        ("storage_bytes", "Bytes stored for the cluster: backups and shipped binlogs."),
        (
            "binlog_lag_seconds",
            "How long changes may have waited to be shipped, at the last storage read "
            "(since the newest shipped event or the shipper's last caught-up record).",
        ),
        ("drill_last_success", "1 if the newest restore drill passed, 0 if it failed."),
        ("drill_last_timestamp_seconds", "When the newest restore drill checked."),
        ("drill_last_age_seconds", "Seconds since the newest restore drill checked."),
        ("catalog_up", "1 if the last read of the catalog in storage worked, else 0."),
    ]
    families = {name: _gauge(name, doc, LOCATION_LABELS) for name, doc in spec}
    for health in snapshot.locations:
        values: dict[str, float | None] = {
            "catalog_up": 1.0 if health.catalog_up else 0.0,
            "complete_backups": health.complete_backups,
            "storage_bytes": health.storage_bytes,
            "last_duration_seconds": health.last_duration_seconds,
            "last_size_bytes": health.last_size_bytes,
        }
        if health.last_complete_at is not None:
            values["last_complete_timestamp_seconds"] = health.last_complete_at
            values["last_complete_age_seconds"] = _age(now, health.last_complete_at)
        if health.binlog_last_event_at is not None:
            measured = now if health.read_at is None else min(now, health.read_at)
            values["binlog_lag_seconds"] = _age(measured, health.binlog_last_event_at)
        if health.drill_passed is not None:
            values["drill_last_success"] = 1.0 if health.drill_passed else 0.0
        if health.drill_checked_at is not None:
            values["drill_last_timestamp_seconds"] = health.drill_checked_at
            values["drill_last_age_seconds"] = _age(now, health.drill_checked_at)
        for name, value in values.items():
            if value is not None:
                families[name].add_metric([health.cluster, health.location], float(value))
    yield from families.values()


def _job_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    failed = _gauge(
        "failed_jobs_last_day", "Jobs of this type that failed in the last 24 hours.", JOB_LABELS
    )
    last = _gauge(
        "last_job_failed", "1 if the newest finished job of this type failed, else 0.", JOB_LABELS
    )
    for health in snapshot.jobs:
        labels = [health.cluster, health.job_type]
        recent = [t for t in health.failed_at if _age(snapshot.now, t) <= DAY]
        failed.add_metric(labels, float(len(recent)))
        if health.last_failed is not None:
            last.add_metric(labels, 1.0 if health.last_failed else 0.0)
    yield failed
    yield last


def _cluster_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    lag = _gauge(
        "binlog_lag_limit_seconds", "The binlog-max-lag setting (the RPO).", CLUSTER_LABELS
    )
    interval = _gauge(
        "schedule_max_interval_seconds",
        "The longest gap between two scheduled backups.",
        CLUSTER_LABELS,
    )
    for settings in snapshot.clusters:
        if settings.binlog_max_lag_seconds is not None:
            lag.add_metric([settings.cluster], float(settings.binlog_max_lag_seconds))
        if settings.schedule_max_interval_seconds is not None:
            interval.add_metric([settings.cluster], float(settings.schedule_max_interval_seconds))
    yield lag
    yield interval


def families(snapshot: Snapshot) -> list[Metric]:
    """The metric families of a snapshot (families without a sample are left out)."""
    found: list[Metric] = []
    for family in (
        *_location_families(snapshot),
        *_job_families(snapshot),
        *_cluster_families(snapshot),
    ):
        if family.samples:
            found.append(family)
    return found


class SnapshotCollector:
    """A prometheus_client collector: the families of what `source()` returns at a scrape."""

    def __init__(self, source: Callable[[], Snapshot | None]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        """The families of the current snapshot (nothing while there is none)."""
        snapshot = self.source()
        return [] if snapshot is None else families(snapshot)


def render(snapshot: Snapshot) -> str:
    """The Prometheus text exposition (format 0.0.4) of `snapshot`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    return generate_latest(registry).decode("utf-8")
