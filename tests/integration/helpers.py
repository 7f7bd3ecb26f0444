"""Small helpers over jubilant: actions, job polling, SQL on the database unit."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jubilant

MANAGER = "backup-manager"
DATABASE = "mysql-server"
LEADER = f"{MANAGER}/leader"
DATABASE_UNIT = f"{DATABASE}/0"
FINISHED = ("success", "error")


def base() -> str:
    """The Ubuntu base the charms are deployed on (INTEGRATION_BASE, default 24.04)."""
    return os.environ.get("INTEGRATION_BASE", "ubuntu@24.04")


def flavour() -> str:
    """The database the mysql-server charm runs (MYSQL_FLAVOUR: mysql or mariadb)."""
    return os.environ.get("MYSQL_FLAVOUR", "mysql")


def timeout(variable: str, default: float) -> float:
    """A timeout in seconds from the environment."""
    return float(os.environ.get(variable, default))


def run(juju: jubilant.Juju, action: str, **params: Any) -> dict[str, Any]:
    """Run a backup-manager action on the leader; return its results (TaskError if it fails)."""
    task = juju.run(LEADER, action, params or None, wait=300)
    return task.results


def every_page(juju: jubilant.Juju, action: str, **params: Any) -> list[dict[str, Any]]:
    """All the rows of a paged listing (oldest first), page by page from the newest."""
    rows: list[dict[str, Any]] = []
    while True:
        results = run(juju, action, **params, limit=200, offset=len(rows))
        page = json.loads(results["json"])
        rows[:0] = page
        if not page or len(rows) >= int(results["total"]):
            return rows


def jobs(juju: jubilant.Juju) -> list[dict[str, Any]]:
    """The manager's job history (list-jobs, all of it)."""
    return every_page(juju, "list-jobs")


def backups(juju: jubilant.Juju, **params: str) -> list[dict[str, Any]]:
    """The catalog rows list-backups returns (all of them)."""
    return every_page(juju, "list-backups", **params)


def wait_for_job(juju: jubilant.Juju, job_id: str) -> dict[str, Any]:
    """Poll list-jobs until the job finishes; return its record (it may be an error)."""
    deadline = time.monotonic() + timeout("INTEGRATION_JOB_TIMEOUT", 30 * 60)
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        record = next((r for r in jobs(juju) if r.get("job-id") == job_id), {})
        print(
            f"  {job_id}: {record.get('status')} {record.get('phase', '')} "
            f"{record.get('progress', '')}"
        )
        if record.get("status") in FINISHED:
            return record
        time.sleep(10)
    raise TimeoutError(f"job {job_id} did not finish; last seen: {record}")


def succeeded(juju: jubilant.Juju, job_id: str) -> dict[str, Any]:
    """Wait for the job and assert it succeeded, showing its message otherwise."""
    record = wait_for_job(juju, job_id)
    assert record["status"] == "success", f"job {job_id} failed: {record.get('message')}"
    return record


def sql(juju: jubilant.Juju, statement: str, database: str | None = None) -> list[list[str]]:
    """Run SQL as root over the socket on the database unit; rows as lists of strings."""
    client = "mariadb" if flavour() == "mariadb" else "mysql"
    args = ["-N", "-B", *(["-D", database] if database else []), "-e", statement]
    task = juju.exec(client, *args, unit=DATABASE_UNIT, wait=300)
    return [line.split("\t") for line in task.stdout.splitlines() if line]


def table_state(juju: jubilant.Juju, table: str) -> tuple[str, str]:
    """(row count, CHECKSUM TABLE) of `shop.<table>`: what a restore must give back."""
    # The table names are the tests' own constants, never input.
    count = sql(juju, f"SELECT COUNT(*) FROM {table}", "shop")[0][0]  # noqa: S608
    checksum = sql(juju, f"CHECKSUM TABLE {table}", "shop")[0][1]
    return count, checksum


def insert_rows(juju: jubilant.Juju, table: str, count: int, label: str) -> None:
    """Insert `count` rows labelled `label` (one statement, so one transaction)."""
    values = ", ".join(f"('{label}-{n}', {n})" for n in range(count))
    sql(juju, f"INSERT INTO {table} (name, qty) VALUES {values}", "shop")  # noqa: S608


def server_time(juju: jubilant.Juju) -> str:
    """The database server's clock, UTC, RFC 3339 (what point-in-time targets mean)."""
    stamp = sql(juju, "SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%dT%H:%i:%SZ')")[0][0]
    return stamp


def wait_for_shipping(juju: jubilant.Juju) -> dict[str, Any]:
    """Wait until the database unit has shipped at least one binlog; return shipping-status."""
    deadline = time.monotonic() + timeout("INTEGRATION_JOB_TIMEOUT", 30 * 60)
    results: dict[str, Any] = {}
    while time.monotonic() < deadline:
        results = juju.run(DATABASE_UNIT, "shipping-status", wait=120).results
        if results.get("last-shipped-file"):
            return results
        time.sleep(15)
    raise TimeoutError(f"no binlog shipped; last shipping-status: {results}")
