"""What every test tier shares: the machine's job logs stay as the tests found them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: the files the charms' job lines go to on a unit (`docs/how-to/monitor-with-cos.md`)
MACHINE_JOB_LOGS = (
    Path("/var/log/database-backup/jobs.log"),
    Path("/var/log/backup-manager/jobs.log"),
)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


@pytest.fixture(autouse=True, scope="session")
def _machine_job_logs_untouched() -> Iterator[None]:
    """Fail the session if a test (or a worker it started) wrote a job log of the machine.

    Tests give every job a log under their own directory; a line in the machine's file
    would be a test's line shipped to Loki on a machine that runs COS collectors.
    """
    before = {path: _signature(path) for path in MACHINE_JOB_LOGS}
    yield
    written = [str(path) for path in MACHINE_JOB_LOGS if _signature(path) != before[path]]
    assert not written, f"tests wrote the machine's job logs: {', '.join(written)}"
