"""Importing the storage layer is cheap: boto3/botocore load only when a client is made.

A charm hook imports the library's storage, catalog and stream modules; the AWS SDK (about
0.4 s and 40 MB) is imported by `storage.client` when an `S3Storage` is created, never at
import time, so other modules import storage names at their top.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SDK = ("boto3", "botocore", "s3transfer", "urllib3")


def _sdk_loaded_after(statements: str, cwd: Path) -> list[str]:
    report = f"print(json.dumps([m for m in {SDK!r} if m in sys.modules]))"
    code = f"import json, sys\n{statements}\n{report}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={"PYTHONPATH": f"{cwd}:{ROOT / 'lib'}", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_storage_catalog_and_stream_loads_no_sdk():
    statements = (
        "import database_backup.storage, database_backup.storage.storage\n"
        "import database_backup.catalog, database_backup.catalog.store\n"
        "import database_backup.catalog.binlogs, database_backup.stream\n"
        "from database_backup.storage import S3Storage, S3Config, StorageError, ObjectStore"
    )
    assert _sdk_loaded_after(statements, ROOT) == []


def test_creating_a_storage_loads_the_sdk():
    statements = (
        "from database_backup.storage import S3Config, S3Storage\n"
        "S3Storage(S3Config(bucket='b', access_key='a', secret_key='s',"
        " endpoint='http://127.0.0.1:9')).close()"
    )
    loaded = _sdk_loaded_after(statements, ROOT)
    assert "botocore" in loaded
    # botocore's own session: boto3's adds its import (s3transfer among it), about 55 ms of
    # every worker's and hook's start, for transfer helpers the storage does not use
    assert "boto3" not in loaded
    assert "s3transfer" not in loaded


@pytest.mark.parametrize("charm_dir", ["src", "mysql/src"])
def test_importing_a_charm_loads_no_sdk(charm_dir: str):
    assert _sdk_loaded_after("import charm", ROOT / charm_dir) == []
