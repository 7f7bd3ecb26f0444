"""Fixtures for the example charm's tests: no real worker, nothing outside the test's dir.

The charm keeps its jobs under `AdopterCharm.state_dir` and starts them with
`start_worker`: both are replaced here for every test, so a test never spawns a worker and
a rerun never finds the jobs of an earlier one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from interface_tester import InterfaceTester
from ops import testing

import charm
from database_backup.jobs import LocalJob

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[LocalJob]:
    """The jobs the charm started (instead of starting them) in this test."""
    monkeypatch.setattr(charm.AdopterCharm, "state_dir", tmp_path / "state")
    started: list[LocalJob] = []

    def start(local: LocalJob, **_: object) -> int:
        started.append(local)
        return 0

    monkeypatch.setattr(charm, "start_worker", start)
    return started


@pytest.fixture
def scenario_event_path_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let pytest-interface-tester 3.4 build relation events with ops-scenario 8.

    The tester reads `event.path.suffix`; ops-scenario 8 renamed it `python_suffix`.
    """
    from scenario.state import _EventPath

    if not hasattr(_EventPath, "suffix"):
        monkeypatch.setattr(
            _EventPath, "suffix", property(lambda path: path.python_suffix), raising=False
        )


@pytest.fixture
def interface_tester(
    interface_tester: InterfaceTester, scenario_event_path_compat: None
) -> InterfaceTester:
    """The interface tester, set up for this charm and the `database_backup` v0 spec.

    The tester clones the spec's repository: `INTERFACE_TESTS_REPO` and
    `INTERFACE_TESTS_BRANCH` point it at another clone or branch (the repository's own
    test of this example points it at the local checkout).
    """
    interface_tester.configure(
        charm_type=charm.AdopterCharm,
        meta=yaml.safe_load((ROOT / "charmcraft.yaml").read_text()),
        repo=os.environ.get("INTERFACE_TESTS_REPO", "https://github.com/example/backup-manager"),
        branch=os.environ.get("INTERFACE_TESTS_BRANCH", "main"),
        base_path="interfaces",
        interface_name="database_backup",
        interface_version=0,
        state_template=testing.State(relations=[testing.PeerRelation("database-peers")]),
    )
    return interface_tester
