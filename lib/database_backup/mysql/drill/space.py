"""How much room a drill needs, and whether the disk can give it (checked before downloading).

The live database must keep room to grow: the drill may not eat into it.

The estimate is the data the scratch server will hold, plus what is downloaded beside it:

- physical (full, or an incremental with its whole chain): each backup's raw stream size
  (its unpacked size, `raw-size` in `backup.json`), or its stored size times
  `UNKNOWN_RAW_FACTOR` when the raw size was not recorded, plus `MARGIN` for the redo apply;
- logical: the downloaded artefact, the dump's data loaded into InnoDB
  (`LOGICAL_FACTOR` times the raw dump) and a freshly initialised datadir (`FRESH_DATADIR`);
- a point in time adds the shipped binlogs replayed, decoded into local files.

The drill is refused when the filesystem would keep less than `min_free` bytes after it:
by default `max(10% of the filesystem, 1 GiB)`, the room left for the live database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from database_backup.catalog import BackupMetadata
from database_backup.catalog.binlogs import BinlogEntry

from .errors import DrillRefusedError

GIB = 2**30
MIB = 2**20
#: prepared data is about the raw stream's size; keep a margin for the redo apply
MARGIN = 1.10
#: raw size assumed per stored byte when a backup did not record its raw size (zstd)
UNKNOWN_RAW_FACTOR = 4
#: InnoDB pages and indexes of a dump's rows, per raw dump byte
LOGICAL_FACTOR = 2.0
#: the system tables, undo and redo logs of a freshly initialised scratch datadir
FRESH_DATADIR = 256 * MIB
#: the default room kept for the live database: this share of the filesystem...
MIN_FREE_SHARE = 0.10
#: ...and at least this much
MIN_FREE_FLOOR = GIB


def raw_bytes(meta: BackupMetadata) -> int:
    """The backup's unpacked size, estimated from the stored size when not recorded."""
    if meta.raw_size is not None:
        return meta.raw_size
    return meta.stored_size * UNKNOWN_RAW_FACTOR


def physical_need(chain: Sequence[BackupMetadata]) -> int:
    """Bytes a physical drill needs: the whole chain unpacked, with the margin."""
    return int(sum(raw_bytes(meta) for meta in chain) * MARGIN)


def logical_need(meta: BackupMetadata) -> int:
    """Bytes a logical drill needs: the download, the loaded data, a fresh datadir."""
    return int(meta.stored_size + raw_bytes(meta) * LOGICAL_FACTOR + FRESH_DATADIR)


def binlog_need(entries: Sequence[BinlogEntry]) -> int:
    """Bytes the decoded binlogs of a point-in-time drill take while replayed."""
    return sum(entry.raw_size for entry in entries)


def default_min_free(total: int) -> int:
    """The room kept free by default on a filesystem of `total` bytes."""
    return max(int(total * MIN_FREE_SHARE), MIN_FREE_FLOOR)


def _mib(size: int) -> str:
    return f"{-(-size // MIB)} MiB"


@dataclass(frozen=True)
class SpaceCheck:
    """The figures of one space check (all in bytes).

    Attributes:
        directory: where the drill would write (the scratch root).
        needed: what the drill needs there.
        free: free on that filesystem now.
        total: that filesystem's size.
        min_free: what must stay free after the drill.
        shares_live: whether the live datadir is on the same filesystem.
    """

    directory: Path
    needed: int
    free: int
    total: int
    min_free: int
    shares_live: bool

    @property
    def left(self) -> int:
        """Free bytes once the drill has written what it needs."""
        return self.free - self.needed

    @property
    def ok(self) -> bool:
        """Whether the drill may go ahead."""
        return self.left >= self.min_free

    def refusal(self) -> str:
        """Why the drill is refused, with the figures and what to do."""
        whose = "the live database's filesystem" if self.shares_live else "that filesystem"
        return (
            f"the drill needs about {_mib(self.needed)} in {self.directory}, where "
            f"{_mib(self.free)} are free of {_mib(self.total)}; it would leave "
            f"{_mib(max(self.left, 0))}, less than the {_mib(self.min_free)} kept free on "
            f"{whose} (--min-free-bytes). Free some space there, or point the drill "
            "directory (--scratch-root) to another disk"
        )


def check_space(
    directory: Path, needed: int, min_free: int | None, live_datadir: Path
) -> SpaceCheck:
    """Check that `directory`'s filesystem holds `needed` bytes and keeps `min_free`.

    Args:
        directory: the scratch root (it exists).
        needed: the drill's estimate.
        min_free: bytes to keep free; None for `default_min_free` of the filesystem.
        live_datadir: the live server's datadir (named in the message if it shares it).

    Raises:
        DrillRefusedError: the drill would leave less than `min_free` bytes free.
    """
    usage = shutil.disk_usage(directory)
    shares = _same_filesystem(directory, live_datadir)
    keep = default_min_free(usage.total) if min_free is None else min_free
    check = SpaceCheck(directory, needed, usage.free, usage.total, keep, shares)
    if not check.ok:
        raise DrillRefusedError(check.refusal())
    return check


def _same_filesystem(first: Path, second: Path) -> bool:
    try:
        return os.stat(first).st_dev == os.stat(second).st_dev
    except OSError:
        return False
