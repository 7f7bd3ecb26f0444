"""Swapping a restored data directory in place of the current one, and undoing it.

The restored data is unpacked into a staging directory on the same filesystem as the
datadir, so the swap is a handful of renames (seconds, whatever the size) and undoing it
is as fast. Entries are moved rather than the directory itself, so the datadir keeps its
inode, owner, mode and any security label, and a datadir that is a mount point works too:

- datadir not a mount point: staging `<parent>/<name>.restore-<tag>`, previous data
  `<parent>/<name>.pre-restore-<tag>`, journal `<parent>/<name>.restore-journal.json`;
- datadir a mount point: the same names hidden inside the datadir (`<datadir>/.restore-...`),
  skipped by the moves.

Every step is recorded first in the journal (written atomically) and the restore holds an
exclusive `flock` on the datadir, so a restore whose process died can be told from one
still running and undone exactly: `DatadirSwap.interrupted(datadir)` then `recover()`.

The journal also names the restore's kind (`physical`, `incremental`, `pitr`) and the
phase it reached (`fetching`, `preparing`, `swapped`, `replaying`, `done`), so a recovery
reports what really happened. A point-in-time recovery keeps the previous data through
its binlog replay (state `replaying`): a failure or a killed process then still puts the
previous data back, and the small files it names (the binlog timeline marker) as they were.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import cast

from database_backup.files import write_json_atomic

from ..errors import EngineError

logger = logging.getLogger(__name__)

# journal states, in the order a restore goes through them
STAGING = "staging"  # staged copy being made; datadir untouched
MOVING_OUT = "moving-out"  # current entries moving into `previous` (datadir: only old data)
MOVING_IN = "moving-in"  # staged entries moving in (`previous` holds all old data)
SWAPPED = "swapped"  # restored data in place, server being started and checked
REPLAYING = "replaying"  # restored server up, binlogs being replayed; previous data kept
ROLLING_BACK_OUT = "rolling-back-out"  # restored entries moving into `failed`
ROLLING_BACK_IN = "rolling-back-in"  # old entries moving back (datadir: only old data)
VERIFIED = "verified"  # restored server answered; only the old data is left to delete

#: states in which the datadir may not hold the previous data: the server must be stopped
#: before recovering
DATA_MOVED = frozenset(
    {MOVING_OUT, MOVING_IN, SWAPPED, REPLAYING, ROLLING_BACK_OUT, ROLLING_BACK_IN}
)

#: what restored the data: a full physical backup, an incremental chain, or a PITR
KINDS = ("physical", "incremental", "pitr")
#: how far the restore got (persisted in the journal)
PHASES = ("fetching", "preparing", "swapped", "replaying", "done")
#: the phase a journal state means (other states keep the phase reached before)
_PHASE_OF = {SWAPPED: "swapped", REPLAYING: "replaying", VERIFIED: "done"}


class SwapError(EngineError):
    """Moving data in or out of the datadir failed, or another restore holds it."""


def _layout(datadir: Path) -> tuple[Path, str, bool]:
    """(directory for our files, their name prefix, nested?) for a datadir."""
    if os.path.ismount(datadir):
        return datadir, ".", True
    return datadir.parent, f"{datadir.name}.", False


def _files_of(value: object) -> dict[str, str | None]:
    """The journal's `restore-files` (path -> text or None), leniently read."""
    if not isinstance(value, dict):
        return {}
    items = cast(dict[object, object], value).items()
    return {str(name): text if isinstance(text, str) else None for name, text in items}


class DatadirSwap:
    """Staging directory, swap, roll-back and crash recovery for one restore."""

    def __init__(self, datadir: str | os.PathLike[str], tag: str, kind: str = "physical") -> None:
        self.datadir = Path(os.path.realpath(datadir))
        if not self.datadir.is_dir():
            raise SwapError(f"the data directory {self.datadir} does not exist")
        base, prefix, self.nested = _layout(self.datadir)
        self.tag = tag
        self.kind = kind
        self.phase = "fetching"
        self.staging = base / f"{prefix}restore-{tag}"
        self.previous = base / f"{prefix}pre-restore-{tag}"
        self.failed = base / f"{prefix}failed-restore-{tag}"
        self.journal = base / f"{prefix}restore-journal.json"
        self._reserved = {
            self.staging.name,
            self.previous.name,
            self.failed.name,
            self.journal.name,
            "lost+found",  # a mount point's own directory stays where it is
        }
        self.state: str | None = None
        #: small files put back as they were by a roll-back: path -> text (None: absent)
        self.restore_files: dict[str, str | None] = {}
        self._lock_fd: int | None = None

    # -- lock and journal ---------------------------------------------------------------

    def _acquire(self) -> None:
        """Take an exclusive lock on the datadir itself (a directory fd: no lock file)."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.datadir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SwapError(f"another restore into {self.datadir} is running") from None
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _record(self, state: str, phase: str | None = None) -> None:
        """Write the journal atomically (temporary file, fsync, rename)."""
        phase = phase or _PHASE_OF.get(state)
        if phase is not None:
            self.phase = phase
        document: dict[str, object] = {
            "state": state,
            "kind": self.kind,
            "phase": self.phase,
            "tag": self.tag,
            "datadir": str(self.datadir),
            "staging": str(self.staging),
            "previous": str(self.previous),
            "failed": str(self.failed),
        }
        if self.restore_files:
            document["restore-files"] = self.restore_files
        write_json_atomic(self.journal, document, mode=0o600)
        self.state = state

    def _finish(self) -> None:
        """Forget this restore: remove our directories, the journal, release the lock."""
        shutil.rmtree(self.failed, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.journal.unlink(missing_ok=True)
        self.state = None
        self._release()

    @classmethod
    def interrupted(cls, datadir: str | os.PathLike[str]) -> DatadirSwap | None:
        """Return the restore that died while working on `datadir`, if there is one.

        Raises:
            SwapError: a restore is still running (it holds the lock), or the journal is
                unreadable.
        """
        real = Path(os.path.realpath(datadir))
        base, prefix, _ = _layout(real)
        journal = base / f"{prefix}restore-journal.json"
        if not journal.exists():
            return None
        try:
            document = json.loads(journal.read_text(encoding="utf-8"))
            swap = cls(real, str(document["tag"]), str(document.get("kind", "physical")))
            state = str(document["state"])
            swap.phase = str(document.get("phase", "fetching"))
            swap.restore_files = _files_of(document.get("restore-files"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SwapError(f"cannot read the restore journal {journal}: {exc}") from exc
        swap._acquire()
        swap.state = state
        return swap

    # -- staging ------------------------------------------------------------------------

    def create_staging(self) -> Path:
        """Lock the datadir, create the (empty, private) staging directory, return it.

        Raises:
            SwapError: another restore runs, or one was interrupted and needs recovery.
        """
        self._acquire()
        if self.journal.exists():
            self._release()
            raise SwapError(f"an interrupted restore left {self.journal}: recover it first")
        if self.staging.exists():
            self._release()
            raise SwapError(f"{self.staging} already exists")
        self._record(STAGING)
        self.staging.mkdir(mode=0o700)
        return self.staging

    def free_bytes(self) -> int:
        """Free space on the datadir's filesystem."""
        return shutil.disk_usage(self.datadir).free

    def match_owner(self) -> None:
        """Give every staged file the datadir's owner and group (when they differ)."""
        stat = self.datadir.stat()
        uid, gid = stat.st_uid, stat.st_gid
        for root, dirs, files in os.walk(self.staging):
            for name in [*dirs, *files]:
                path = os.path.join(root, name)
                st = os.lstat(path)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.lchown(path, uid, gid)
        os.chown(self.staging, uid, gid)

    def discard_staging(self) -> None:
        """Remove the staged copy and end the restore (a failure before the swap)."""
        self._finish()

    # -- swap ---------------------------------------------------------------------------

    def _entries(self, directory: Path) -> list[str]:
        names = sorted(os.listdir(directory))
        if directory == self.datadir and self.nested:
            names = [name for name in names if name not in self._reserved]
        return names

    def _move_all(self, source: Path, target: Path) -> None:
        for name in self._entries(source):
            os.rename(source / name, target / name)

    def swap_in(self) -> None:
        """Move the current data aside and the staged data in (server must be stopped).

        Raises:
            SwapError: a rename failed; call `roll_back()` to restore the previous state.
        """
        try:
            self._record(MOVING_OUT)
            self.previous.mkdir(mode=0o700, exist_ok=True)
            self._move_all(self.datadir, self.previous)
            self._record(MOVING_IN)
            self._move_all(self.staging, self.datadir)
            self.staging.rmdir()
            self._record(SWAPPED)
        except OSError as exc:
            raise SwapError(f"cannot move the restored data into {self.datadir}: {exc}") from exc

    def set_phase(self, phase: str) -> None:
        """Record the phase reached before the swap (`fetching`, `preparing`)."""
        self._record(self.state or STAGING, phase)

    def start_replay(self, keep_files: tuple[Path, ...] = ()) -> None:
        """Record that binlogs are being replayed on the restored data (previous kept).

        `keep_files` (small text files, e.g. the binlog timeline marker) are put back as
        they are now by a roll-back, also by `recover` after the process died.
        """
        for path in keep_files:
            text = path.read_text(encoding="utf-8") if path.exists() else None
            self.restore_files[str(path)] = text
        self._record(REPLAYING)

    @property
    def swapped(self) -> bool:
        """Whether the datadir may hold anything but the previous data."""
        return self.state in DATA_MOVED

    def roll_back(self) -> None:
        """Put the previous data back exactly as it was (server must be stopped).

        Works from any journal state, also for a restore whose process died.

        Raises:
            SwapError: the previous data could not be moved back; it is left in
                `self.previous` and the message says so.
        """
        try:
            if self.state in (MOVING_IN, SWAPPED, REPLAYING, ROLLING_BACK_OUT):
                self._record(ROLLING_BACK_OUT)
                self.failed.mkdir(mode=0o700, exist_ok=True)
                self._move_all(self.datadir, self.failed)
            if self.state in (MOVING_OUT, ROLLING_BACK_OUT, ROLLING_BACK_IN):
                self._record(ROLLING_BACK_IN)
                if self.previous.exists():
                    self._move_all(self.previous, self.datadir)
                    self.previous.rmdir()
            self._put_files_back()
        except OSError as exc:
            raise SwapError(
                f"cannot put the previous data back into {self.datadir}: {exc}; "
                f"the previous data is in {self.previous}"
            ) from exc
        self._finish()

    def _put_files_back(self) -> None:
        for name, text in self.restore_files.items():
            path = Path(name)
            if text is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(path.name + ".restoring")
                tmp.write_text(text, encoding="utf-8")
                tmp.chmod(0o600)
                os.replace(tmp, path)

    def discard_previous(self) -> None:
        """Delete the previous data once the restored server has proved itself."""
        self._record(VERIFIED)
        shutil.rmtree(self.previous, ignore_errors=True)
        self._finish()

    def recover(self) -> str:
        """Finish an interrupted restore safely; return what was done.

        The server must be stopped when `swapped` is true (the caller's job).
        """
        state, what = self.state, f"the {self.kind} restore"
        if state == VERIFIED:
            shutil.rmtree(self.previous, ignore_errors=True)
            self._finish()
            return f"{what} had been verified (phase done); removed the previous data"
        if state in DATA_MOVED:
            phase = self.phase
            self.roll_back()
            return f"{what} died while {state} (phase {phase}); put the previous data back"
        phase = self.phase
        self._finish()
        return f"{what} died before touching the data (phase {phase}); removed its staged copy"
