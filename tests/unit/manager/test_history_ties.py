"""A job that fails in the same second as the last success still shows in the status."""

from __future__ import annotations

import json
from typing import Any

from backup_manager import history

SECOND = "2026-11-22T08:15:50Z"


def _records(items: list[dict[str, Any]]) -> list[history.Record]:
    """History records as the peer databag holds them."""
    return history.load(json.dumps(items))


def test_a_failure_in_the_same_second_as_the_last_success_is_reported() -> None:
    records = _records(
        [
            {"job-id": "b", "type": "backup", "status": "success", "finished-at": SECOND},
            {"job-id": "r", "type": "restore", "status": "error", "finished-at": SECOND},
        ]
    )
    failed = history.last_failure(records)
    assert failed is not None
    assert failed.job_id == "r"


def test_a_success_in_the_same_second_as_a_failure_clears_it() -> None:
    # only a success of the same type clears a failure (a backup does not clear a restore)
    records = _records(
        [
            {"job-id": "r", "type": "restore", "status": "error", "finished-at": SECOND},
            {"job-id": "r2", "type": "restore", "status": "success", "finished-at": SECOND},
        ]
    )
    assert history.last_failure(records) is None


def test_the_last_of_two_backups_finished_in_one_second_is_the_last_backup() -> None:
    records = _records(
        [
            {"job-id": "b1", "type": "backup", "status": "success", "finished-at": SECOND},
            {"job-id": "b2", "type": "backup", "status": "success", "finished-at": SECOND},
        ]
    )
    last = history.last_success(records)
    assert last is not None
    assert last.job_id == "b2"
