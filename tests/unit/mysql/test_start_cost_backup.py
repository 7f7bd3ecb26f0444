"""A backup imports the storage SDK overlapped with detection and with the tool's start.

The preflight thread used to import boto3 only after the spawn; then the import was
joined before the spawn, which left a core idle while it ran. Now it starts before the
detection and the tool is spawned as soon as the detection is done, whether or not the
import is. Checked in a fresh interpreter: the unit tier's process has long imported
the SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SDK = ["botocore.client", "botocore.config", "botocore.session"]
_SCRIPT = r"""
import json, sys, threading, time
from database_backup.mysql.connection import ConnectionSpec
from database_backup.mysql.flavour import for_name
from database_backup.mysql.physical import backup

events = []

SDK = ("botocore.client", "botocore.config", "botocore.session")

def sdk(name):
    events.append((name, sorted(m for m in sys.modules if m in SDK)))

DETECTION = float(sys.argv[2])

def detect(conn, *, workdir=None, client=None):
    sdk("sdk-at-detect-start")
    time.sleep(DETECTION)  # the client process runs: the GIL is free for the SDK import
    sdk("sdk-at-detect-end")
    return for_name("mariadb", "10.11.6-MariaDB")

if len(sys.argv) > 3:  # an import slower than the detection
    from database_backup.storage.client import warm_up
    def slow_warm_up():
        def run():
            time.sleep(float(sys.argv[3]))
            warm_up()
            events.append(("warm-up-done", []))
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread
    backup.start_warm_up = slow_warm_up

def spawn(argv, err):
    sdk("sdk-at-spawn")
    raise RuntimeError("stop here")

class Opened(Exception):
    pass

def opener():
    raise Opened("no storage in this test")

backup.detect = detect
backup.toolstream.spawn = spawn
try:
    backup.backup_full(ConnectionSpec(), opener, backup_id="20260101T000000Z",
                       workdir=sys.argv[1])
except backup.BackupError as exc:
    events.append(("error", str(exc)))
print(json.dumps(events))
"""


def _events(tmp_path: Path, *timing: float) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), *(str(t) for t in timing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_sdk_is_loaded_while_the_detection_runs(tmp_path: Path):
    events = _events(tmp_path, 3.0)

    # the warm-up ran while the (simulated) client process of the detection ran
    assert events["sdk-at-detect-end"] == _SDK
    assert events["sdk-at-spawn"] == _SDK
    assert "stop here" in str(events["error"])


def test_the_tool_is_spawned_without_waiting_for_the_sdk(tmp_path: Path):
    events = list(_events(tmp_path, 0.0, 3.0))  # names, in order

    # a detection that ends first: the tool starts at once, the import goes on beside it
    assert events.index("sdk-at-spawn") < events.index("error")
    assert "warm-up-done" not in events
