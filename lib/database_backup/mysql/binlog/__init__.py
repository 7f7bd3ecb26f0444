"""Binary logs: shipping them to object storage and applying them again.

`shipping` (copy closed binlogs to the catalog), `reader` (parse a binlog file's events),
`timeline_owner` (which server writes which timeline), `replay` (apply binlogs through
the server's binlog reader and client).
"""
