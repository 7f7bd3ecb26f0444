"""Logical backups: SQL dumps, whole or in part.

`dump` (mariadb-dump/mysqldump to object storage), `restore` (replay a dump through the
client), `sqlfilter` (picks databases and tables out of a dump).
"""
