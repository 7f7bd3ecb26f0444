"""The worker's hand-back: the command that dispatches a charm event once a job ended."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

#: where Juju installs juju-exec on a machine; called by absolute path (a worker started
#: by systemd has a minimal PATH)
JUJU_EXEC = "/usr/bin/juju-exec"


def dispatch_command(
    unit: str, charm_dir: Path, event: str = "job-finished", *, juju_exec: str = JUJU_EXEC
) -> tuple[str, ...] | None:
    """`juju-exec <unit> "JUJU_DISPATCH_PATH=hooks/<event> <charm-dir>/dispatch"`.

    None where juju-exec is not installed (tests, no Juju): the charm's `update-status`
    then picks the result up.
    """
    if not os.access(juju_exec, os.X_OK):
        return None
    dispatch = f"{shlex.quote(str(charm_dir))}/dispatch"
    return (juju_exec, unit, f"JUJU_DISPATCH_PATH=hooks/{event} {dispatch}")
