"""Physical backups: hot copies of the datadir with mariabackup/xtrabackup.

`backup` (full backup to object storage), `incremental` (incremental backups and their
chains), `extract` (download, verify, unpack and prepare a backup or chain into a staging
directory), `datadir` (staging, swap and roll-back), `restore` (restore in place),
`commands` (the backup tool's command lines and reports), `xbstream` (reads the stream).
"""
