"""The server's packages: installed once, a failed install retried on later hooks (no ops).

`ensure` is called from install, config-changed, upgrade-charm, start and update-status;
it runs apt only until one install of the configured flavour succeeded, which it records
in the charm's state directory together with the flavour. A failure is recorded too, so
every hook reports it (with apt's reason) until a retry succeeds. The flavour is fixed by
the first successful install: a later change is refused, not installed over the data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from database_backup.files import read_json, write_json_atomic

from .workload import Server, WorkloadError

logger = logging.getLogger(__name__)

RETRY_NOTE = "retried on update-status"


class Installation:
    """Install the server's packages until it worked; say why the server is not there."""

    def __init__(self, server: Server) -> None:
        self._server = server

    @property
    def _record_path(self) -> Path:
        return self._server.state_dir / "installed.json"

    @property
    def _error_path(self) -> Path:
        return self._server.state_dir / "install-error.txt"

    def ensure(self) -> str:
        """Install the packages unless done; return why the server is unusable ("" if not)."""
        recorded = self._recorded_flavour()
        if recorded is not None:
            return self.problem()
        self._server.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._server.install()
        except WorkloadError as exc:
            logger.error("%s (%s)", exc, RETRY_NOTE)
            self._error_path.write_text(f"{exc}\n")
            return self.problem()
        flavour = self._server.flavour
        write_json_atomic(
            self._record_path, {"flavour": flavour.name, "packages": list(flavour.packages)}
        )
        self._error_path.unlink(missing_ok=True)
        return ""

    def problem(self) -> str:
        """Why the server's packages are not usable, without installing ("" when they are)."""
        wanted = self._server.flavour.name
        recorded = self._recorded_flavour()
        if recorded == wanted:
            return ""
        if recorded is not None:
            return (
                f"flavour={wanted}, but this unit runs {recorded}: the flavour is chosen at "
                f"deployment and changing it does not migrate the data; set flavour={recorded} "
                "again"
            )
        if self._error_path.exists():
            return f"{self._error_path.read_text().strip()}; {RETRY_NOTE}"
        if self._server.is_installed():  # installed before the charm kept a record
            return ""
        return f"{wanted} is not installed yet; {RETRY_NOTE}"

    def _recorded_flavour(self) -> str | None:
        record = read_json(self._record_path) or {}
        flavour = record.get("flavour")
        return flavour if isinstance(flavour, str) else None
