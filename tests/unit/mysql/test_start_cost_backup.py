"""A backup imports the storage SDK before it spawns the tool, overlapped with detection.

The preflight thread used to import boto3 after the spawn, holding the GIL most of that
time while the main thread had to drain the tool's pipe (the tool then blocked). Checked
in a fresh interpreter: the unit tier's process has long imported the SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SDK = ["boto3.session", "botocore.client", "botocore.config"]
_SCRIPT = r"""
import json, sys, time
from database_backup.mysql.connection import ConnectionSpec
from database_backup.mysql.flavour import for_name
from database_backup.mysql.physical import backup

events = []

SDK = ("boto3.session", "botocore.client", "botocore.config")

def sdk(name):
    events.append((name, sorted(m for m in sys.modules if m in SDK)))

def detect(conn, *, workdir=None, client=None):
    sdk("sdk-at-detect-start")
    time.sleep(3.0)  # the client process runs: the GIL is free for the SDK import
    sdk("sdk-at-detect-end")
    return for_name("mariadb", "10.11.6-MariaDB")

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


def _events(tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {str(name): value for name, value in json.loads(done.stdout.strip().splitlines()[-1])}


def test_the_sdk_is_loaded_during_detection_and_before_the_tool_is_spawned(tmp_path: Path):
    events = _events(tmp_path)

    # the warm-up ran while the (simulated) client process of the detection ran ...
    assert events["sdk-at-detect-end"] == _SDK
    # ... and the tool was spawned only then, with nothing left to import
    assert events["sdk-at-spawn"] == _SDK
    assert "stop here" in str(events["error"])
