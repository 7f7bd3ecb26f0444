"""The exporter's systemd service: its unit file, installed, enabled and kept running.

The charm writes `/etc/systemd/system/backup-manager-exporter.service` (the charm's venv
python, `PYTHONPATH` to the charm's `lib` and `src`, `Restart=on-failure`) and enables and
starts it through `charmlibs.systemd`. The unit file names a digest of the code the
exporter runs, so an upgrade that changes it rewrites the file and restarts the service.
Where systemd does not run the machine (a container without it, the tests), nothing is
installed: `available()` says so.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from charmlibs import systemd

import database_backup
from database_backup.jobs.systemd import booted

from .server import PORT

SERVICE = "backup-manager-exporter.service"
UNIT_DIR = Path("/etc/systemd/system")
RESTART_SECONDS = 5
#: the packages whose code the exporter runs (a change restarts it)
_CODE_ROOTS = (Path(__file__).resolve().parent.parent, Path(database_backup.__file__).parent)


def available() -> bool:
    """Whether systemd runs this machine (else the exporter is not installed)."""
    return booted()


def unit_path() -> Path:
    """The unit file's path."""
    return UNIT_DIR / SERVICE


def code_digest(roots: tuple[Path, ...] = _CODE_ROOTS) -> str:
    """A short digest of every Python file of the exporter's packages."""
    digest = hashlib.sha256()
    for root in roots:
        for source in sorted(root.rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def unit_file(charm_dir: Path, config: Path, *, port: int = PORT, code: str = "") -> str:
    """The unit file's content (no secret: the credentials stay in the 0600 `config`)."""
    python = charm_dir / "venv" / "bin" / "python"
    pythonpath = f"{charm_dir / 'lib'}:{charm_dir / 'src'}"
    return f"""\
# Managed by the backup-manager charm; changes are overwritten.
# code {code or code_digest()}
[Unit]
Description=backup-manager metrics exporter (backup health for Prometheus, port {port})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=PYTHONPATH={pythonpath}
Environment=PYTHONUNBUFFERED=1
ExecStart={python} -m backup_manager.exporter --config {config} --port {port}
Restart=on-failure
RestartSec={RESTART_SECONDS}
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def ensure(charm_dir: Path, config: Path) -> str:
    """Install (or update and restart) the service, or start it if it is down.

    Returns what was done: `installed`, `started` or `running`.

    Raises:
        OSError: the unit file cannot be written.
        charmlibs.systemd.SystemdError: systemctl failed.
    """
    content = unit_file(charm_dir, config)
    path = unit_path()
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = None
    if current != content:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(content)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
        systemd.daemon_reload()
        systemd.service_enable(SERVICE)
        systemd.service_restart(SERVICE)
        return "installed"
    if not systemd.service_running(SERVICE):
        systemd.service_start(SERVICE)
        return "started"
    return "running"


def remove() -> bool:
    """Stop, disable and delete the service; False if it was not installed."""
    path = unit_path()
    if not path.exists():
        return False
    systemd.service_stop(SERVICE)
    systemd.service_disable(SERVICE)
    path.unlink()
    systemd.daemon_reload()
    return True
