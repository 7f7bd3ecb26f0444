"""Installing Debian packages through charmlibs-apt, with errors an admin can read (no ops).

`apt` (the charmlibs-apt module) is the seam unit tests swap for a fake. Every failure -
a held dpkg lock at first boot, a package missing from the archive, a broken mirror -
becomes one `PackageInstallError` whose message is apt's own first error line.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from charmlibs import apt

logger = logging.getLogger(__name__)

_MAX_REASON = 240


class PackageInstallError(Exception):
    """The packages could not be installed; the message says apt's reason."""


def install(names: Sequence[str]) -> None:
    """Refresh the package lists, then install `names` (the ones present are kept).

    Raises:
        PackageInstallError: apt failed; safe to call again later (apt is idempotent).
    """
    try:
        apt.update()
        apt.add_package(list(names))
    except subprocess.CalledProcessError as exc:  # apt.update() raises it as it is
        raise PackageInstallError(reason(_text(exc.stderr) or _text(exc.stdout))) from exc
    except (apt.PackageError, apt.PackageNotFoundError) as exc:
        raise PackageInstallError(reason(str(exc.args[0]) if exc.args else "")) from exc
    logger.info("installed %s", " ".join(names))


def reason(output: str) -> str:
    """The first `E:` line of apt's output (the cause), without the prefix; else the gist."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        _, marker, rest = line.partition("E: ")
        if marker:
            return rest.strip()[:_MAX_REASON]
    return (lines[0] if lines else "apt failed without a message")[:_MAX_REASON]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else ""
