"""Integration fixtures: a temporary Juju model with both charms and s3-integrator deployed.

Every test here skips, with the reason printed in the report header and in the summary,
when there is no reachable controller, no S3 settings or no way to get the packed charms
(`environment.py`). `make test` never collects this directory: only `make integration`
(`tox -e integration`) does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import jubilant
import pytest

from tests.integration import environment, helpers
from tests.integration.environment import S3Settings

HERE = Path(__file__).resolve().parent


@functools.cache
def skip_reason() -> str | None:
    """Why the integration tests cannot run here (None: they can)."""
    return (
        environment.controller_problem()
        or environment.s3_problem()
        or environment.charm_paths(helpers.base())[1]
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say at the top of the run whether the integration tests run, and if not, why."""
    if not any(Path(str(arg)).resolve().is_relative_to(HERE) for arg in config.args):
        return []
    reason = skip_reason()
    if reason:
        return [f"integration tests SKIPPED: {reason}"]
    return [f"integration tests run on the current Juju controller (base {helpers.base()})"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every integration test skipped, with the reason, when the run cannot happen."""
    ours = [item for item in items if item.path.resolve().is_relative_to(HERE)]
    if not ours:
        return
    reason = skip_reason()
    if reason:
        marker = pytest.mark.skip(reason=f"integration tests cannot run here: {reason}")
        for item in ours:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def s3() -> S3Settings:
    return S3Settings.from_env()


@pytest.fixture(scope="session")
def charms() -> dict[str, Path]:
    paths, problem = environment.charm_paths(helpers.base())
    assert problem is None, problem
    return environment.pack_missing(paths, helpers.base())


@pytest.fixture(scope="module")
def juju(request: pytest.FixtureRequest) -> Iterator[jubilant.Juju]:
    keep = os.environ.get("INTEGRATION_KEEP_MODEL", "") not in ("", "0")
    with jubilant.temp_model(keep=keep) as juju:
        juju.wait_timeout = helpers.timeout("INTEGRATION_DEPLOY_TIMEOUT", 40 * 60)
        yield juju
        if request.session.testsfailed:
            print(juju.cli("status", "--relations"))
            print(juju.debug_log(limit=300))
        if keep:
            print(f"model {juju.model} kept (INTEGRATION_KEEP_MODEL)")
