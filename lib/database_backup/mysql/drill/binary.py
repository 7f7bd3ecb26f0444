"""Which server program and version the drill's scratch server runs: the live server's own.

The live server is asked for its pid file and base directory; its program is read from
`/proc/<pid>/exe` (exactly the binary that runs), else looked for under the base directory,
else on PATH. When the live server does not answer, the flavour comes from the backup and
the version from the program's `--version`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from database_backup.catalog import BackupMetadata

from ..connection import ConnectionSpec, QueryError, run_query
from ..flavour import Flavour, FlavourError, detect, for_name, parse_version
from .errors import DrillRefusedError

_PROGRAMS = ("mariadbd", "mysqld")
_PLACES = ("sbin", "bin", "libexec")


@dataclass(frozen=True)
class ServerProgram:
    """The program a scratch server runs, and what it is."""

    path: str
    flavour: Flavour


def find_program(
    conn: ConnectionSpec, meta: BackupMetadata, work: Path | None = None
) -> ServerProgram:
    """The live server's program and flavour (version included).

    Raises:
        DrillRefusedError: no server program found, or a physical backup of another flavour or
            major.minor version than this server (it could not start on its files).
    """
    try:
        flavour = detect(conn, workdir=work)
    except FlavourError:
        flavour = None
    path = _running_program(conn, flavour, work) if flavour is not None else None
    path = path or _on_path()
    if path is None:
        raise DrillRefusedError(
            "no mariadbd or mysqld program found for the scratch server: install the "
            "database server on this machine"
        )
    if flavour is None:
        try:
            flavour = replace(for_name(meta.flavour), version=_version_of(path))
        except FlavourError as exc:
            raise DrillRefusedError(str(exc)) from exc
    check_match(meta, flavour)
    return ServerProgram(path, flavour)


def check_match(meta: BackupMetadata, flavour: Flavour) -> None:
    """Refuse a physical backup this server's program could not start on.

    Raises:
        DrillRefusedError: another flavour, or another major.minor version.
    """
    if meta.kind == "logical":
        return  # a dump loads into any version
    if meta.flavour != flavour.name:
        raise DrillRefusedError(
            f"backup {meta.backup_id} is a {meta.flavour} backup and this server runs "
            f"{flavour.name}: drill it on a {meta.flavour} unit"
        )
    if parse_version(meta.server_version)[:2] != parse_version(flavour.version)[:2]:
        raise DrillRefusedError(
            f"backup {meta.backup_id} was taken from {meta.flavour} {meta.server_version} "
            f"and this server is {flavour.version}: physical backups start only on the same "
            "major.minor version (drill it on such a unit, or drill a logical backup)"
        )


def _running_program(conn: ConnectionSpec, flavour: Flavour, work: Path | None) -> str | None:
    """The live server's program, from its pid file or its base directory."""
    try:
        rows = run_query(conn, "SELECT @@pid_file, @@basedir;", client=flavour.client_tool,
                         workdir=work)  # fmt: skip
    except QueryError:
        return None
    if not rows or len(rows[0]) < 2:
        return None
    pid_file, basedir = Path(rows[0][0]), Path(rows[0][1])
    if not pid_file.is_absolute() and flavour.datadir:
        pid_file = Path(flavour.datadir) / pid_file
    try:
        pid = int(pid_file.read_text().strip())
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except (OSError, ValueError):
        exe = ""
    if exe and Path(exe).name in _PROGRAMS and Path(exe).exists():
        return exe
    for place in _PLACES:
        for name in _PROGRAMS:
            candidate = basedir / place / name
            if candidate.exists():
                return str(candidate)
    return None


def _on_path() -> str | None:
    for name in _PROGRAMS:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    return None


def _version_of(path: str) -> str:
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()
