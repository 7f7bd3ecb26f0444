"""Swapping a restored data directory in place of the current one, and undoing it.

The restored data is unpacked into a staging directory on the same filesystem as the
datadir, so the swap is a handful of renames (seconds, whatever the size) and undoing it
is as fast. Entries are moved rather than the directory itself, so the datadir keeps its
inode, owner, mode and any security label, and a datadir that is a mount point works too:

- datadir not a mount point: staging `<parent>/<name>.restore-<tag>`, previous data
  `<parent>/<name>.pre-restore-<tag>` (siblings);
- datadir a mount point: the same directories hidden inside the datadir
  (`<datadir>/.restore-<tag>`, `<datadir>/.pre-restore-<tag>`), skipped by the moves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)


class SwapError(Exception):
    """Moving data in or out of the datadir failed."""


class DatadirSwap:
    """Staging directory, swap and roll-back for one restore."""

    def __init__(self, datadir: str | os.PathLike[str], tag: str) -> None:
        self.datadir = Path(os.path.realpath(datadir))
        if not self.datadir.is_dir():
            raise SwapError(f"the data directory {self.datadir} does not exist")
        self.nested = os.path.ismount(self.datadir)
        if self.nested:
            base, prefix = self.datadir, "."
        else:
            base, prefix = self.datadir.parent, f"{self.datadir.name}."
        self.staging = base / f"{prefix}restore-{tag}"
        self.previous = base / f"{prefix}pre-restore-{tag}"
        self.failed = base / f"{prefix}failed-restore-{tag}"
        self._reserved = {self.staging.name, self.previous.name, self.failed.name}
        self._moved_out: list[str] = []
        self._out_done = False
        self.swapped = False

    # -- staging ----------------------------------------------------------------------

    def create_staging(self) -> Path:
        """Create the (empty, private) staging directory and return it."""
        if self.staging.exists():
            raise SwapError(f"{self.staging} already exists: is another restore running?")
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
        # the staging directory itself is replaced by the datadir; its mode stays private
        os.chown(self.staging, uid, gid)

    def discard_staging(self) -> None:
        """Remove the staging directory (after a failure before the swap)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    # -- swap -------------------------------------------------------------------------

    def _entries(self, directory: Path) -> list[str]:
        names = sorted(os.listdir(directory))
        if directory == self.datadir and self.nested:
            names = [name for name in names if name not in self._reserved]
        return names

    def swap_in(self) -> None:
        """Move the current data aside and the staged data in (server must be stopped).

        Raises:
            SwapError: a rename failed; call `roll_back()` to restore the previous state.
        """
        try:
            self.previous.mkdir(mode=0o700)
            for name in self._entries(self.datadir):
                os.rename(self.datadir / name, self.previous / name)
                self._moved_out.append(name)
            self._out_done = True
            self.swapped = True
            for name in self._entries(self.staging):
                os.rename(self.staging / name, self.datadir / name)
            self.staging.rmdir()
        except OSError as exc:
            raise SwapError(f"cannot move the restored data into {self.datadir}: {exc}") from exc

    def roll_back(self) -> None:
        """Put the previous data back exactly as it was (server must be stopped).

        Raises:
            SwapError: the previous data could not be moved back; it is left in
                `self.previous` and the message says so.
        """
        try:
            if not self._out_done:
                for name in reversed(self._moved_out):
                    os.rename(self.previous / name, self.datadir / name)
                self._moved_out.clear()
            else:
                self.failed.mkdir(mode=0o700, exist_ok=True)
                for name in self._entries(self.datadir):
                    os.rename(self.datadir / name, self.failed / name)
                for name in self._entries(self.previous):
                    os.rename(self.previous / name, self.datadir / name)
            with contextlib.suppress(FileNotFoundError):
                self.previous.rmdir()
        except OSError as exc:
            raise SwapError(
                f"cannot put the previous data back into {self.datadir}: {exc}; "
                f"the previous data is in {self.previous}"
            ) from exc
        self.swapped = False
        shutil.rmtree(self.failed, ignore_errors=True)
        self.discard_staging()

    def discard_previous(self) -> None:
        """Delete the previous data once the restored server has proved itself."""
        shutil.rmtree(self.previous, ignore_errors=True)
        self.discard_staging()
