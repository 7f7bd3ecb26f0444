"""Continuous binlog shipping, outside hooks: a systemd timer runs the engine's `ship-binlogs`.

The charm decides whether shipping should run (the requirer asks for it, this unit is the
leader, the server is ready, no restore runs) and calls `Shipper.apply`. Timelines belong
to the engine: a restore (or point-in-time recovery) starts a new one in storage, and the
next shipping run continues on it, so the history before the restore is never
overwritten. The shipping runs and the restore jobs share one engine workdir. No `ops` here.

Bounded lag: the requirer's `max-lag-seconds` (default 60) is the recovery point objective.
The timer runs every `period` seconds (at most the lag) and each run rotates the open binlog
once its oldest write is `lag - period` seconds old (`ship-binlogs --rotate-after`), so
nothing older than about the lag is missing from storage (`shipping_cadence`).
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, cast

from database_backup.contract import EngineSpec
from database_backup.files import read_json, write_json_atomic
from database_backup.jobs import clean_env

logger = logging.getLogger(__name__)

UNIT = "mysql-server-binlog-shipping"
DEFAULT_INTERVAL = 300
DEFAULT_MAX_LAG = 60
MIN_PERIOD = 10

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def shipping_cadence(max_lag: int, interval: int = DEFAULT_INTERVAL) -> tuple[int, int]:
    """The timer's period and the engine's rotation age that keep storage within `max_lag`.

    The period is at most half the lag (at least 10 s) and at most the asked interval; the
    open binlog is rotated once its oldest write is `max_lag - period` old, so the next run
    at the latest ships it before that write is `max_lag` old.
    """
    period = max(MIN_PERIOD, min(interval, max_lag // 2))
    period = min(period, max_lag)
    return period, max(0, max_lag - period)


@dataclasses.dataclass(frozen=True)
class ShippingPlan:
    """What shipping should do now: run with this spec and interval, or stop (spec None).

    `rotate_after`: seconds after which the open binlog is rotated and shipped (None: never
    rotated for age, only closed files are shipped).
    """

    spec: EngineSpec | None = dataclasses.field(default=None, repr=False)
    interval: int = DEFAULT_INTERVAL
    reason: str = ""
    rotate_after: int | None = None


class Shipper:
    """The shipping timer and its files under `directory` (0700)."""

    def __init__(
        self,
        directory: Path,
        *,
        systemd_dir: Path = Path("/etc/systemd/system"),
        run: Runner = subprocess.run,
        python: str = sys.executable,
        python_path: Sequence[str] = (),
        binlog_dir: Path | None = None,
    ) -> None:
        self.dir = directory
        self._binlog_dir = binlog_dir
        self._systemd_dir = systemd_dir
        self._run = run
        self._python = python
        self._python_path = list(python_path)

    @property
    def spec_path(self) -> Path:
        """The shipping spec (secrets; 0600)."""
        return self.dir / "spec.json"

    @property
    def cadence_path(self) -> Path:
        """The rotation age the running timer uses (no secrets)."""
        return self.dir / "cadence.json"

    @property
    def state_path(self) -> Path:
        """The engine's state file of the last shipping run."""
        return self.dir / "state.json"

    # -- control ------------------------------------------------------------------------

    def command(self, rotate_after: int | None = None) -> list[str]:
        """The engine command one shipping run executes (no secrets).

        `rotate_after` defaults to the one the running timer was set up with.
        """
        if rotate_after is None:
            noted = (read_json(self.cadence_path) or {}).get("rotate-after")
            rotate_after = noted if isinstance(noted, int) else None
        return [
            self._python,
            "-m",
            "database_backup.cli",
            "ship-binlogs",
            "--spec",
            str(self.spec_path),
            "--state-file",
            str(self.state_path),
            *(["--binlog-dir", str(self._binlog_dir)] if self._binlog_dir else []),
            *(["--rotate-after", str(rotate_after)] if rotate_after is not None else []),
        ]

    def render_units(self, interval: int, rotate_after: int | None = None) -> dict[str, str]:
        """The service and timer files."""
        env = clean_env(self._python_path)
        environment = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
        service = (
            "[Unit]\nDescription=Ship closed MySQL binlogs to object storage\n\n"
            "[Service]\nType=oneshot\n"
            f"Environment={environment}\n"
            f"ExecStart={shlex.join(self.command(rotate_after))}\n"
            "Nice=10\nIOSchedulingClass=best-effort\n"
        )
        timer = (
            "[Unit]\nDescription=Ship closed MySQL binlogs every few minutes\n\n"
            f"[Timer]\nOnActiveSec=10\nOnUnitInactiveSec={interval}\nAccuracySec=5\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
        return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}

    def apply(self, plan: ShippingPlan) -> bool:
        """Start, update or stop the timer to match `plan`; return whether it runs."""
        if plan.spec is None:
            self.stop()
            return False
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        changed = _write_if_changed_json(self.spec_path, plan.spec.to_json())
        cadence = {"rotate-after": plan.rotate_after}
        changed = _write_if_changed_json(self.cadence_path, cadence) or changed
        for name, content in self.render_units(plan.interval, plan.rotate_after).items():
            changed = _write_if_changed(self._systemd_dir / name, content) or changed
        if changed or not self.is_enabled():
            self._systemctl("daemon-reload")
            self._systemctl("enable", "--now", f"{UNIT}.timer")
            self._systemctl("restart", f"{UNIT}.timer")
        return True

    def stop(self) -> None:
        """Stop and disable the timer and drop the spec (it holds secrets)."""
        if (self._systemd_dir / f"{UNIT}.timer").exists() or self.is_enabled():
            self._systemctl("disable", "--now", f"{UNIT}.timer")
        self.spec_path.unlink(missing_ok=True)
        self.cadence_path.unlink(missing_ok=True)

    def is_enabled(self) -> bool:
        """Whether the timer is active."""
        try:
            result = self._run(
                ["systemctl", "is-active", "--quiet", f"{UNIT}.timer"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    def position(self) -> dict[str, Any]:
        """The last shipping run: its outcome, the timeline, what was shipped last and when."""
        state = read_json(self.state_path) or {}
        raw = state.get("result")
        result = cast("dict[str, Any]", raw) if isinstance(raw, dict) else {}
        info: dict[str, Any] = {}
        for name in ("status", "message", "finished-at"):
            if isinstance(state.get(name), str):
                info[name] = state[name]
        if result.get("timeline") is not None:
            info["timeline"] = str(result["timeline"])
        shipped = result.get("shipped")
        last = result.get("last-shipped-file")
        if last is None and isinstance(shipped, list) and shipped:
            last = shipped[-1] if isinstance(shipped[-1], str) else None
        if isinstance(last, str):
            info["last-shipped-file"] = last
            info["last-shipped-at"] = result.get("last-shipped-at") or state.get("finished-at")
        return info

    def _systemctl(self, *args: str) -> None:
        try:
            result = self._run(
                ["systemctl", *args], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.error("systemctl %s failed: %s", " ".join(args), exc)
            return
        if result.returncode != 0:
            logger.error("systemctl %s: %s", " ".join(args), (result.stderr or "").strip())


#: the unit databag's `log-shipping` value (schema `log-shipping-status`)
ShippingStatus = TypedDict(
    "ShippingStatus",
    {
        "enabled": bool,
        "status": str,
        "message": str,
        "timeline": str,
        "last-shipped-file": str,
        "last-shipped-at": str,
    },
    total=False,
)


def status_document(
    enabled: bool, running: bool, position: Mapping[str, Any], reason: str
) -> ShippingStatus:
    """The unit databag's `log-shipping` value (schema `log-shipping-status`)."""
    doc = ShippingStatus(enabled=enabled)
    if isinstance(position.get("timeline"), str):
        doc["timeline"] = position["timeline"]
    if running and position.get("status") == "error":
        doc["status"] = "error"
        doc["message"] = str(position.get("message", ""))[:500]
    elif running:
        doc["status"] = "running"
    else:
        doc["status"] = "stopped"
        if reason:
            doc["message"] = reason
    if isinstance(position.get("last-shipped-file"), str):
        doc["last-shipped-file"] = position["last-shipped-file"]
    shipped_at = position.get("last-shipped-at")
    if isinstance(shipped_at, str):
        doc["last-shipped-at"] = shipped_at.replace("+00:00", "Z")
    return doc


def _write_if_changed(path: Path, content: str) -> bool:
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return True


def _write_if_changed_json(path: Path, value: dict[str, Any]) -> bool:
    if read_json(path) == value:
        return False
    write_json_atomic(path, value, mode=0o600)
    return True
