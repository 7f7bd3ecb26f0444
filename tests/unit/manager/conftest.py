"""Fixtures for the backup-manager's Scenario tests: no network, no /etc writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup_manager import copying, locations, schedule

from .fakes import FakeS3


@pytest.fixture(autouse=True)
def _private_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cron file and copy state in the test's directory."""
    monkeypatch.setattr(schedule, "CRON_FILE", tmp_path / "cron.d-backup-manager")
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "state")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    """In-memory buckets standing in for S3 (one store per bucket name)."""
    fake = FakeS3()
    monkeypatch.setattr(locations, "open_storage", fake.open)
    return fake
