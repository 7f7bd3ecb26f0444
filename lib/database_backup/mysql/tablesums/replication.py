"""Changes a replica applies that its own binlog does not show.

Table sums are tied to a backup's consistent point by reading the server's binlog: a table
the binlog names nowhere in the window did not change in it. On a replica with
``log_slave_updates`` OFF (MariaDB's default; ``log_replica_updates`` on MySQL), the
transactions replication applies are not written to that binlog: a table they change would
look unchanged, and its sum would be recorded for data the backup does not hold.

`mark` reads what replication has applied so far, where the binlog does not show it;
`hidden_changes` tells whether anything was applied between two marks:

- ``None``: the binlog shows every change (``log_slave_updates`` ON): nothing hidden;
- MariaDB with it OFF: ``@@gtid_slave_pos``, which moves with every transaction
  replication applies (``""`` on a server that never replicated);
- MySQL with it OFF: `CANNOT_TELL` (no position readable without replication privileges;
  not run here: MySQL cannot run on this project's test machines).

A window whose first mark was not read (`NOT_READ`) is clear only on a server that has
never applied a replicated transaction.
"""

from __future__ import annotations

from ..connection import QueryError
from ..flavour import MARIADB
from .session import Statements

#: the mark of a server that cannot say what replication applied (MySQL, the option OFF)
CANNOT_TELL = "cannot tell"
#: the mark of a window's start that was not read
NOT_READ = "not read"
#: why a replica with log_slave_updates OFF records no sum (``error`` and each ``skipped``)
HIDDEN_CHANGES = (
    "replication may have applied changes during the backup that this server's binlog "
    "does not show (log_slave_updates is OFF): whether a table changed after the backup's "
    "consistent point cannot be told; set log_slave_updates=ON (log_replica_updates on "
    "MySQL) on this replica to record table sums"
)

_MARIADB_SQL = "SELECT @@log_slave_updates, @@gtid_slave_pos;"
_MYSQL_SQL = ("SELECT @@log_replica_updates;", "SELECT @@log_slave_updates;")
_ON = ("1", "ON")


def mark(session: Statements, flavour: str, deadline: float) -> str | None:
    """What replication has applied that the binlog does not show (see the module docstring).

    Raises:
        QueryError: the server did not answer.
    """
    if flavour == MARIADB:
        reply = session.run(_MARIADB_SQL, deadline=deadline)
        if reply.errors or not reply.rows:
            raise QueryError("cannot read log_slave_updates: " + "; ".join(reply.errors))
        row = reply.rows[0]
        if row[0] in _ON:
            return None
        return row[1] if len(row) > 1 else ""
    errors: list[str] = []
    for sql in _MYSQL_SQL:
        reply = session.run(sql, deadline=deadline)
        if not reply.errors and reply.rows:
            return None if reply.rows[0][0] in _ON else CANNOT_TELL
        errors.extend(reply.errors)
    raise QueryError("cannot read log_replica_updates: " + "; ".join(errors))


def hidden_changes(first: str | None, last: str | None) -> bool:
    """Whether replication may have applied changes the binlog does not show.

    ``first`` and ``last``: the marks at the window's start and end (`mark`).
    """
    if last is None:
        return False
    if last == CANNOT_TELL:
        return True
    if first == NOT_READ:
        return last != ""
    return first != last
