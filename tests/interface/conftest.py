"""Configure pytest-interface-tester for this repository's two charms.

`interface_tester` is parametrized over the charms: `backup-manager` (the root charm, the
requirer) and `mysql-server` (`mysql/`, the provider). Each is tested against the interface
tests in `interfaces/database_backup/v0/` of this very repository.

The tester `git clone`s the interface specs from `repo`, so it sees COMMITTED files only:
commit `interfaces/` before running. The branch is the one checked out here (CI: a fresh
clone of `main`); set `INTERFACE_TESTS_BRANCH` when the checkout is a detached HEAD.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest
from interface_tester import InterfaceTester
from ops import testing
from scenario.state import _EventPath

from tests.interface.spec import CHARMS, INTERFACE, REPO_ROOT, SPEC_DIR


def current_branch() -> str:
    """The branch the tester clones: `INTERFACE_TESTS_BRANCH`, else the checked-out one."""
    override = os.environ.get("INTERFACE_TESTS_BRANCH")
    if override:
        return override
    result = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    branch = result.stdout.strip()
    if branch == "HEAD":
        raise RuntimeError(
            "the checkout is a detached HEAD, and the interface tester clones a branch: "
            "check out a branch or set INTERFACE_TESTS_BRANCH"
        )
    return branch


def warn_if_spec_uncommitted() -> None:
    """Warn when the interface spec has uncommitted changes the tester will not see."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--", str(SPEC_DIR)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    if result.stdout.strip():
        warnings.warn(
            "interfaces/database_backup/v0 has uncommitted changes; the interface tester "
            "clones the repository and runs the COMMITTED version",
            stacklevel=2,
        )


@pytest.fixture(autouse=True)
def _manager_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manager's cron files, logs (its job lines) and copy state in the test's directory."""
    from backup_manager import copying, schedule

    monkeypatch.setattr(schedule, "CRON_DIR", tmp_path / "cron.d")
    monkeypatch.setattr(schedule, "LOG_DIR", tmp_path / "log")
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "state")


@pytest.fixture
def scenario_event_path_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let pytest-interface-tester 3.4.1 build relation events with ops-scenario 8.

    The tester builds each event's path as `endpoint + event.path.suffix`; ops-scenario 8
    renamed that attribute `python_suffix` (same value, e.g. `_relation_changed`). This
    adds the old name back for the duration of one test.
    """
    if hasattr(_EventPath, "suffix"):
        return
    monkeypatch.setattr(
        _EventPath, "suffix", property(lambda path: path.python_suffix), raising=False
    )


@pytest.fixture(params=sorted(CHARMS))
def interface_tester(
    request: pytest.FixtureRequest,
    interface_tester: InterfaceTester,
    scenario_event_path_compat: None,
) -> InterfaceTester:
    """The plugin's tester, configured for one of the two charms."""
    charm = CHARMS[request.param]
    warn_if_spec_uncommitted()
    interface_tester.configure(
        charm_type=charm.charm_type(),
        meta=charm.yaml_file("metadata.yaml"),
        actions=charm.yaml_file("actions.yaml"),
        config=charm.yaml_file("config.yaml"),
        repo=f"file://{REPO_ROOT}",
        branch=current_branch(),
        base_path="interfaces",
        interface_name=INTERFACE,
        interface_version=0,
        state_template=testing.State(relations=[testing.PeerRelation(charm.peer_endpoint)]),
    )
    return interface_tester
