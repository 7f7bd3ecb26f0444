"""`python -m database_backup.cli ...` (the same as the `database-backup` script)."""

import sys

from database_backup.cli.app import main

sys.exit(main())
