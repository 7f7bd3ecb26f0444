"""`make demo`: the whole product on this machine, as a Juju admin would see it.

Starts a local Ceph RADOS Gateway (a real S3 endpoint) and a local MariaDB, then plays
scenario A through both charms' real code (`tests/e2e/harness.py`: Scenario instead of a
Juju controller, real job workers, real backups in real buckets), printing each command
with its result and each status change of both charms; checks the data with CHECKSUM
TABLE and row hashes; cleans everything up and prints the wall time.

Run it with `make demo`, or `uv run --frozen python -m tests.e2e.demo` after `make deps`.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.scenario_a import Outcome

ROOT = Path(__file__).resolve().parents[2]
RULE = "=" * 100


def say(title: str) -> None:
    """A section title."""
    print(f"\n{RULE}\n== {title}\n{RULE}", flush=True)


def checks(out: Outcome) -> list[tuple[str, bool]]:
    """What must hold at the end of scenario A, each with its verdict."""
    b1, b3 = out.backups["b1"], out.backups["b3"]
    after_b3 = {row["backup-id"] for row in out.rows["after-b3"]}
    snaps = out.snapshots
    return [
        (
            f"point-in-time recovery to {out.target}: the data is what it was then"
            f" ({snaps['target']})",
            snaps["after-pitr"] == snaps["target"] != snaps["mistake"],
        ),
        (
            f"retention (keep 1): the held backup {b1} and the newest {b3} are kept,"
            f" {out.backups['b2']} was deleted",
            after_b3 == {b1, b3},
        ),
        (
            f"copy {out.backups['copy']} in region-b restored onto a fresh MariaDB: the data"
            f" of backup {b3} ({snaps['dr']})",
            snaps["dr"] == snaps["b3"],
        ),
    ]


def _juju(value: object) -> str:
    """A config value as `juju config` spells it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def main() -> int:
    """Run the demo; 0 when every check holds."""
    started = time.monotonic()
    for entry in (ROOT, ROOT / "src", ROOT / "mysql" / "src"):
        if str(entry) not in sys.path:
            sys.path.append(str(entry))
    from tests.e2e.data import two_regions
    from tests.e2e.harness import TwoCharms
    from tests.e2e.scenario_a import CONFIG, play
    from tests.infra.ceph import CephS3
    from tests.infra.mariadb import MariaDBServer
    from tests.workload.engine_helpers import shutdown

    base = Path(tempfile.mkdtemp(prefix="backup-charms-demo-"))
    logging.basicConfig(
        filename=base / "charms.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    servers: list[MariaDBServer] = []

    def server(name: str, server_id: int) -> MariaDBServer:
        db = MariaDBServer(base / name, server_id=server_id)
        servers.append(db)
        db.start()
        return db

    ceph = CephS3(base / "ceph")
    verdicts: list[tuple[str, bool]] = []
    try:
        say("A local S3 endpoint (Ceph RADOS Gateway) and a local MariaDB")
        ceph.start()
        region_a, region_b = two_regions(ceph)
        print(f"S3 endpoint {ceph.endpoint}")
        print(f"  region-a: bucket {region_a.bucket} (one S3 user)")
        print(f"  region-b: bucket {region_b.bucket} (another S3 user)")
        db = server("mariadb-region-a", 1)
        print(f"MariaDB on 127.0.0.1:{db.port}")
        print(
            "\nBoth charms run their real code through Scenario (ops.testing) instead of a"
            " Juju controller;\ntheir jobs run as real workers against the MariaDB and the S3"
            " buckets above.\nThe admin's model: backup-manager related to two s3-integrator"
            " applications (region-a, region-b)."
        )
        options = " ".join(f"{key}={_juju(value)}" for key, value in CONFIG.items())
        print(f"$ juju deploy backup-manager --config '{options}'")
        for name in ("region-a", "region-b"):
            print(f"$ juju deploy s3-integrator {name}; juju integrate backup-manager:s3 {name}")
        print("$ juju deploy mysql-server --config flavour=mariadb")
        harness = TwoCharms(base / "charms", [region_a, region_b], config=CONFIG, log=print)
        with harness.running():
            out = play(harness, db, lambda: server("mariadb-region-b", 2), say)
        say("Checks (CHECKSUM TABLE and row hashes of every table)")
        verdicts = checks(out)
        for text, ok in verdicts:
            print(f"[{'OK' if ok else 'FAILED'}] {text}")
    finally:
        say("Cleaning up")
        for db in servers:
            shutdown(db)
        ceph.stop()
        passed = bool(verdicts) and all(ok for _, ok in verdicts)
        if passed:
            shutil.rmtree(base, ignore_errors=True)
            print("stopped MariaDB and Ceph, removed", base)
        else:
            print("stopped MariaDB and Ceph; logs kept in", base)
        print(f"\nwall time: {time.monotonic() - started:.1f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
