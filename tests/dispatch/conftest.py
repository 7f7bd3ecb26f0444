"""The dispatch tier's fixtures: both charms primed once per session, a model per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .deployment import Deployment, sandbox_works
from .packing import prime

CHARMS = ("backup-manager", "mysql-server")


@pytest.fixture(scope="session")
def primed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each charm laid out as charmcraft primes it (venv from wheels, dispatch), once."""
    out = tmp_path_factory.mktemp("primed")
    return {name: prime(name, out) for name in CHARMS}


@pytest.fixture
def deployment(tmp_path: Path, primed: dict[str, Path]) -> Deployment:
    """An empty model with the fake hook tools; hooks run sandboxed (see deployment.py)."""
    problem = sandbox_works()
    if problem:
        pytest.fail(f"the dispatch tier cannot sandbox hooks: {problem}")
    return Deployment(tmp_path / "model", primed)
