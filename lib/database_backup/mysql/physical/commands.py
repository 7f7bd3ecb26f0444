"""Command lines of the physical backup tools, built from a Flavour (pure functions).

Secrets never appear here: connection options come from a 0600 defaults file passed as
`--defaults-extra-file`, which must be the first option of the command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..flavour import Flavour

# mariabackup and xtrabackup both print, at the end of a backup:
#   MySQL binlog position: filename 'bin.000001', position '563095',
#   GTID of the last change '0-1-3'      (on one line)
# (the GTID part may be missing or empty when GTIDs are not in use).
_BINLOG_RE = re.compile(
    r"binlog position: filename '(?P<file>[^']+)', position '?(?P<pos>\d+)'?"
    r"(?:, GTID of the last change '(?P<gtid>[^']*)')?"
)
# "The latest check point (for incremental): '44404'"
_CHECKPOINT_RE = re.compile(r"latest check point \(for incremental\): '(?P<lsn>\d+)'")


@dataclass(frozen=True)
class BinlogCoordinates:
    """Where the backup sits in the binary log.

    Attributes:
        file: binlog file name (no directory).
        position: byte offset in that file.
        gtid_set: GTID set/position of the last change ("" or None when not in use).
    """

    file: str
    position: int
    gtid_set: str | None


def backup_command(
    flavour: Flavour,
    defaults_file: Path,
    *,
    target_dir: Path,
    parallel: int = 1,
    incremental_lsn: int | None = None,
) -> list[str]:
    """Full physical backup streamed as xbstream to stdout.

    Args:
        flavour: the server's flavour (chooses xtrabackup or mariabackup).
        defaults_file: 0600 file with the connection options.
        target_dir: scratch directory the tool may use (nothing is written there when
            streaming, but the option is required).
        parallel: number of copy threads.
        incremental_lsn: take an incremental backup of the pages changed after this LSN
            (the parent backup's `to_lsn`).
    """
    argv = [
        flavour.backup_tool,
        f"--defaults-extra-file={defaults_file}",
        "--backup",
        "--stream=xbstream",
        f"--target-dir={target_dir}",
    ]
    if parallel > 1:
        argv.append(f"--parallel={parallel}")
    if incremental_lsn is not None:
        argv.append(f"--incremental-lsn={int(incremental_lsn)}")
    return argv


def extract_command(flavour: Flavour, directory: Path, *, parallel: int = 1) -> list[str]:
    """Unpack an xbstream read from stdin into `directory` (xbstream / mbstream)."""
    argv = [flavour.stream_tool, "-x", "-C", str(directory)]
    if parallel > 1:
        argv.append(f"--parallel={parallel}")
    return argv


def prepare_command(
    flavour: Flavour,
    directory: Path,
    *,
    use_memory_mb: int = 256,
    incremental_dir: Path | None = None,
    apply_log_only: bool = False,
) -> list[str]:
    """Apply the redo log to an extracted backup so the server can start on it.

    With `incremental_dir`, apply that extracted incremental backup onto the prepared
    base in `directory` (chains are prepared in order). `apply_log_only` keeps a base
    open for more incrementals (needed by xtrabackup; mariabackup ignores it).
    """
    argv = [
        flavour.backup_tool,
        "--prepare",
        f"--target-dir={directory}",
        f"--use-memory={use_memory_mb}M",
    ]
    if apply_log_only and flavour.prepare_apply_log_only:
        argv.append("--apply-log-only")
    if incremental_dir is not None:
        argv.append(f"--incremental-dir={incremental_dir}")
    return argv


def parse_binlog_coordinates(log_text: str) -> BinlogCoordinates | None:
    """Find the binlog file/position/GTID set in the backup tool's log (last one wins)."""
    found = None
    for match in _BINLOG_RE.finditer(log_text):
        found = match
    if found is None:
        return None
    gtid = found.group("gtid")
    return BinlogCoordinates(
        file=found.group("file"), position=int(found.group("pos")), gtid_set=gtid or None
    )


def parse_binlog_info_file(text: str) -> BinlogCoordinates | None:
    """Parse an `xtrabackup_binlog_info`/`mariadb_backup_binlog_info` file (tab-separated)."""
    for line in text.splitlines():
        fields = line.strip().split("\t")
        if len(fields) >= 2 and fields[1].isdigit():
            gtid = fields[2].strip() if len(fields) >= 3 else ""
            return BinlogCoordinates(
                file=fields[0], position=int(fields[1]), gtid_set=gtid or None
            )
    return None


def parse_checkpoint_lsn(log_text: str) -> int | None:
    """Return the LSN a following incremental backup would start from, if logged."""
    found = None
    for match in _CHECKPOINT_RE.finditer(log_text):
        found = match
    return int(found.group("lsn")) if found else None


def tool_succeeded(log_text: str) -> bool:
    """Return whether the tool's log ends its run with "completed OK!"."""
    return "completed OK!" in log_text[-4096:]


#: names of the binlog-coordinates file in the stream (MariaDB 11 renamed it)
BINLOG_INFO_FILES = ("xtrabackup_binlog_info", "mariadb_backup_binlog_info")
#: names of the LSN file in the stream
CHECKPOINT_FILES = ("xtrabackup_checkpoints", "mariadb_backup_checkpoints")


def parse_checkpoints_file(text: str) -> dict[str, int]:
    """Parse `xtrabackup_checkpoints` ("key = value" lines) into its numeric values."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and value.strip().isdigit():
            values[name.strip()] = int(value.strip())
    return values


def coordinates_from(files: dict[str, bytes], log_text: str) -> BinlogCoordinates | None:
    """Binlog coordinates from the stream's info file, else from the tool's log."""
    for name in BINLOG_INFO_FILES:
        if name in files:
            found = parse_binlog_info_file(files[name].decode("utf-8", "replace"))
            if found is not None:
                return found
    return parse_binlog_coordinates(log_text)


def to_lsn_from(files: dict[str, bytes], log_text: str) -> int | None:
    """The backup's end LSN from the stream's checkpoints file, else from the tool's log."""
    for name in CHECKPOINT_FILES:
        if name in files:
            values = parse_checkpoints_file(files[name].decode("utf-8", "replace"))
            if "to_lsn" in values:
                return values["to_lsn"]
    return parse_checkpoint_lsn(log_text)
