"""The engine's process contract: the spec file it reads and the state file it writes.

A charm (or the job runner on its behalf) writes an `EngineSpec` to a 0600 file and starts
`python -m database_backup.cli <command> --spec SPEC --state-file STATE`; the command keeps
an `EngineState` in STATE up to date and the charm reads it back. Both sides import this
module, so neither builds nor parses these documents by hand. No `ops` import.

The spec (kebab-case JSON keys; secrets only here, never on a command line)::

    {
      "cluster-id": "<model-uuid>/<app>",
      "storage": {"bucket": "b", "endpoint": "http://127.0.0.1:7480", "region": "",
                  "path": "backups", "uri-style": "path", "tls-ca-chain": null,
                  "part-size-mb": 8, "max-concurrency": 4,
                  "access-key": "...", "secret-key": "..."},
      "connection": {"host": "127.0.0.1", "port": 3306, "socket": null,
                     "user": "backup", "password": "..."},
      "encryption-key": "<base64 of 32 bytes, optional: encrypts backups>",
      "server": {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"},
      "workdir": "/var/lib/database-backup"
    }

`server` may also be `{"type": "command", "datadir": ..., "start": [...], "stop": [...],
"status": [...]}`. Times in the state file are RFC 3339 UTC with a `Z` (older files with
`+00:00` are read as well).
"""

from .spec import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_MB,
    ConnectionSection,
    EngineSpec,
    ServerSection,
    StorageSection,
    decode_key,
    default_workdir,
    encode_key,
)
from .state import ERROR, RUNNING, SUCCESS, EngineResult, EngineState, Status
from .values import JSON, SpecError, normalise_time, now_text

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PART_MB",
    "ERROR",
    "JSON",
    "RUNNING",
    "SUCCESS",
    "ConnectionSection",
    "EngineResult",
    "EngineSpec",
    "EngineState",
    "ServerSection",
    "SpecError",
    "Status",
    "StorageSection",
    "decode_key",
    "default_workdir",
    "encode_key",
    "normalise_time",
    "now_text",
]
