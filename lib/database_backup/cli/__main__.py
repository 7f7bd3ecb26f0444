"""`python -m database_backup.cli ...` (the same as the `database-backup` script)."""

from database_backup.cli.app import run

run()
