"""database_backup: the `database_backup` relation library and a MySQL/MariaDB backup engine.

Sub-packages, one responsibility each:

- `database_backup.interface`: the relation library (requirer and provider sides, job
  model, JSON-schema validation, the locking policy, job assignment). No S3 or MySQL code.
- `database_backup.storage`: the `ObjectStore` protocol everything that stores backups
  depends on, and `S3Storage` (streaming multipart upload, download, copy, list). Cheap to
  import: botocore loads only when a client is created.
- `database_backup.stream`: byte-stream stages (zstd, authenticated encryption, SHA-256).
- `database_backup.mysql`: the backup engine (flavour detection, physical and logical
  backups, restore, binlog shipping, point-in-time recovery). No `ops` imports.
- `database_backup.catalog`: the backup catalog in object storage, holds and retention.
- `database_backup.files`: the one atomic JSON writer (and reader) for local state files.
- `database_backup.timefmt`: the one time format (`2026-11-22T09:00:21Z`) and its parser.
"""
