"""Point-in-time recovery.

`plan` (choose the backup and binlogs that reach a target), `recover` (restore, then
replay up to the target, on a new timeline).
"""
