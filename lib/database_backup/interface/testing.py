"""Helpers for charms that adopt the library and test with `ops.testing` (Scenario).

Import only from tests: it needs `ops[testing]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ops import testing

from . import codec
from .model import JobRequest, JobStatus
from .requirer import DEFAULT_ENDPOINT


def requests_databag(jobs: Iterable[JobRequest]) -> dict[str, str]:
    """A requirer application databag holding `jobs` (validated), CA chains by reference."""
    return codec.encode_bag(jobs)


def statuses_databag(statuses: Iterable[JobStatus]) -> dict[str, str]:
    """A provider unit databag holding `statuses` (validated)."""
    return {codec.JOBS_KEY: codec.encode_statuses(statuses)}


def provider_side_relation(
    jobs: Iterable[JobRequest] = (),
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    remote_app_name: str = "backup-manager",
    **kwargs: Any,
) -> testing.Relation:
    """The relation as a provider charm sees it: the manager's requests in the remote app data."""
    return testing.Relation(
        endpoint,
        interface="database_backup",
        remote_app_name=remote_app_name,
        remote_app_data=requests_databag(jobs),
        **kwargs,
    )


def requirer_side_relation(
    unit_statuses: Mapping[int, Iterable[JobStatus]] | None = None,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    remote_app_name: str = "mysql",
    jobs: Iterable[JobRequest] = (),
    **kwargs: Any,
) -> testing.Relation:
    """The relation as a requirer charm sees it: provider units' statuses, our own requests."""
    units = unit_statuses or {0: ()}
    return testing.Relation(
        endpoint,
        interface="database_backup",
        remote_app_name=remote_app_name,
        local_app_data=requests_databag(jobs),
        remote_units_data={unit: statuses_databag(s) for unit, s in units.items()},
        **kwargs,
    )
