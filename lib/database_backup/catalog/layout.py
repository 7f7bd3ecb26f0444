"""The names of a cluster's catalog objects (the layout is described in ``store.py``)."""

CLUSTER_FILE = "cluster.json"
METADATA_FILE = "backup.json"
HOLD_FILE = "preserve.json"
VERIFICATION_FILE = "verification.json"
LOG_FILE = "job.log"
BACKUPS_DIR = "backups"
BINLOGS_DIR = "binlogs"
