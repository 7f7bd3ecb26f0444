"""The related database applications, as the manager names them."""

from __future__ import annotations

import ops

from database_backup.interface import remote_app


def app_name(relation: ops.Relation, default: str = "?") -> str:
    """The name of the relation's remote application (`default` if Juju did not say)."""
    app = remote_app(relation)
    return app.name if app is not None else default
