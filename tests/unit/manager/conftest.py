"""Fixtures for the backup-manager's Scenario tests: no network, no /etc writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup_manager import copying, locations, schedule

from .fakes import FakeS3


@pytest.fixture(autouse=True)
def _private_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cron files, schedule logs and copy state in the test's directory."""
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir()
    monkeypatch.setattr(schedule, "CRON_DIR", cron_dir)
    monkeypatch.setattr(schedule, "LOG_DIR", tmp_path / "log")
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "state")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    """In-memory buckets standing in for S3 (one store per bucket name)."""
    fake = FakeS3()
    monkeypatch.setattr(locations, "open_storage", fake.open)
    return fake
