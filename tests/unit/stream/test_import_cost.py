"""The stream stages load zstandard and cryptography only when a stage is used (finding 7).

Importing `database_backup.stream.base` (as `mysql/objects.py` does for a type) ran the
package's `__init__`, which imported every stage: zstandard and cryptography were loaded
by every CLI process at start, before the backup tool was spawned, although the callers
import `encode`/`decode` late on purpose. An unencrypted restore never needs cryptography.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("zstandard", "cryptography")


def _loaded_after(statements: str) -> list[str]:
    report = f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{statements}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_starting_the_cli_loads_neither_zstd_nor_cryptography() -> None:
    assert _loaded_after("import database_backup.cli, database_backup.mysql") == []


def test_an_unencrypted_round_trip_loads_no_cryptography() -> None:
    statements = (
        "import io\n"
        "from database_backup.stream import decode, encode\n"
        "stored, _ = encode(io.BytesIO(b'x' * 100), compression_level=3, key=None)\n"
        "raw = decode(stored, key=None, compressed=True, expected_sha256=None,"
        " expected_size=None)\n"
        "assert raw.read() == b'x' * 100"
    )

    assert _loaded_after(statements) == ["zstandard"]


def test_the_package_still_exports_every_stage() -> None:
    statements = (
        "import database_backup.stream as s\n"
        "for name in s.__all__: getattr(s, name)\n"
        "from database_backup.stream import EncryptReader, generate_key\n"
        "assert len(generate_key()) == 32"
    )

    assert sorted(_loaded_after(statements)) == ["cryptography", "zstandard"]
