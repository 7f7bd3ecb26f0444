"""The remote application of a relation, which Juju does not always give."""

from __future__ import annotations

import ops


def remote_app(relation: ops.Relation) -> ops.Application | None:
    """`relation.app`, or None when Juju did not say which application it is.

    ops types `Relation.app` as always set, but documents that in practice it can be None
    (https://bugs.launchpad.net/juju/+bug/1960934); callers check the returned value.
    """
    return relation.app
