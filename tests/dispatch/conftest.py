"""The dispatch tier's fixtures: both charms primed once per session, fresh models on demand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra.fixtures import ceph  # noqa: F401 - pytest finds fixtures by name here

from .deployment import Deployment, sandbox_works
from .packing import prime

CHARMS = ("backup-manager", "mysql-server")


@pytest.fixture(scope="session")
def primed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each charm laid out as charmcraft primes it (venv from wheels, dispatch), once."""
    problem = sandbox_works()
    if problem:
        pytest.fail(f"the dispatch tier cannot sandbox hooks: {problem}")
    out = tmp_path_factory.mktemp("primed")
    return {name: prime(name, out) for name in CHARMS}


@pytest.fixture(scope="session")
def new_deployment(
    tmp_path_factory: pytest.TempPathFactory, primed: dict[str, Path]
) -> Callable[[], Deployment]:
    """Make an empty model with the fake hook tools (hooks run sandboxed: deployment.py)."""
    return lambda: Deployment(tmp_path_factory.mktemp("model"), primed)


@pytest.fixture
def deployment(new_deployment: Callable[[], Deployment]) -> Deployment:
    """An empty model for one test."""
    return new_deployment()
