"""A tiny deployment for the dispatch tests: applications, units, relations, hooks, actions.

Each unit gets a charm directory (`JUJU_CHARM_DIR`: links to the primed charm, so ops keeps
its own `.unit-state.db` per unit) and a machine: the directories the charms write to on a
real machine (`/etc/cron.d`, `/etc/systemd/system`, `/var/lib`, `/usr/sbin`... below)
are bind-mounted, in a private mount namespace (`unshare --mount`), from the unit's own
temporary directories. So a hook runs the real charm code, as root, without touching the
test machine, and with no database or package installed on its "machine".

A hook runs `./dispatch` as a subprocess with the environment the Juju agent sets, with the
fake hook tools (`hooktools.py`) first on PATH, sharing one JSON model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import hooktools
from .packing import base_python

JUJU_VERSION = "3.6.4"
HOOK_TOOLS = (
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "is-leader",
    "juju-log",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-model-get",
    "relation-set",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "status-get",
    "status-set",
    "juju-exec",
    "systemctl",
    "apt-get",
    "apt-cache",
    "apt",
    "dpkg",
    "snap",
    "mysql",
    "mariadb",
    "mysqld",
    "mariadbd",
    "xtrabackup",
    "mariabackup",
    "mariadb-backup",
)
#: What a charm may write on its machine; each is replaced by the unit's own directory.
MACHINE_DIRS = (
    "/etc/apt",
    "/etc/cron.d",
    "/etc/mysql",
    "/etc/systemd/system",
    "/usr/sbin",
    "/var/lib",
    "/var/log",
)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX = """\
set -e
for target in {targets}; do
    mount --bind "$MACHINE_ROOT$target" "$target"
done
cd "$JUJU_CHARM_DIR"
exec ./dispatch
"""


R = TypeVar("R", bound="Run")


@dataclasses.dataclass
class Run:
    """One dispatch: its exit code and output, and what the unit logged meanwhile."""

    unit: str
    path: str
    returncode: int
    stdout: str
    stderr: str
    log: list[str]
    seconds: float

    def check(self: R) -> R:
        """Assert the hook ended well: exit 0, and no traceback on stderr or in juju-log."""
        text = "\n".join([self.stderr, *self.log])
        assert self.returncode == 0, f"{self.path} on {self.unit} exited {self.returncode}\n{text}"
        assert "Traceback" not in text, f"{self.path} on {self.unit} raised\n{text}"
        return self


@dataclasses.dataclass
class ActionRun(Run):
    """An action's dispatch with the results and failure message it set."""

    results: dict[str, str]
    failed: str | None


class Deployment:
    """Applications of primed charms, their units and relations, over one JSON model."""

    def __init__(self, root: Path, charms: dict[str, Path]) -> None:
        self.root = root
        self.charms = charms
        self.state_path = root / "model.json"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        for tool in HOOK_TOOLS:
            (self.bin / tool).symlink_to(Path(hooktools.__file__).resolve())
        self._write(
            {
                "model": {"name": "dispatch", "uuid": str(uuid.uuid4())},
                "apps": {},
                "relations": {},
                "secrets": {},
                "actions": {},
                "log": [],
                "status": {},
                "versions": {},
                "ports": {},
                "services": {},
                "archive": {},
                "installed": {},
                "sql": [],
                "calls": [],
            }
        )
        self._ids = itertools.count(1)

    # -- the model -----------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The model as the fake hook tools left it."""
        return json.loads(self.state_path.read_text())

    def _write(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state, indent=1, sort_keys=True))

    def _update(self, **changes: Any) -> dict[str, Any]:
        state = self.state
        state.update(changes)
        self._write(state)
        return state

    def add_app(
        self, app: str, charm: str, *, units: int = 1, config: dict[str, Any] | None = None
    ) -> list[str]:
        """Deploy `units` units of `charm` as `app`; unit 0 leads. Return the unit names."""
        defaults = _config_defaults(self.charms[charm] / "config.yaml")
        names = [f"{app}/{index}" for index in range(units)]
        state = self.state
        state["apps"][app] = {
            "charm": charm,
            "units": names,
            "leader": names[0],
            "config": {**defaults, **(config or {})},
        }
        self._write(state)
        for name in names:
            unit_dir = self._unit_dir(name)
            (unit_dir / "charm").mkdir(parents=True)
            for entry in self.charms[charm].iterdir():
                (unit_dir / "charm" / entry.name).symlink_to(entry)
            for target in MACHINE_DIRS:
                (unit_dir / "machine" / target.lstrip("/")).mkdir(parents=True)
        return names

    def configure(self, app: str, **options: Any) -> None:
        """`juju config app key=value`: change options (the test then runs config-changed)."""
        state = self.state
        state["apps"][app]["config"].update(options)
        self._write(state)

    def set_leader(self, unit: str) -> None:
        """Juju elects `unit` leader of its application (the test runs leader-elected)."""
        state = self.state
        state["apps"][unit.split("/")[0]]["leader"] = unit
        self._write(state)

    def relate(self, app: str, endpoint: str, other: str, other_endpoint: str) -> int:
        """Integrate two applications; return the relation id."""
        rel_id = next(self._ids)
        state = self.state
        state["relations"][str(rel_id)] = {
            "apps": [app, other],
            "endpoints": {app: endpoint, other: other_endpoint},
            "data": {},
        }
        self._write(state)
        return rel_id

    def peer(self, app: str, endpoint: str) -> int:
        """The application's peer relation; return its id."""
        rel_id = next(self._ids)
        state = self.state
        state["relations"][str(rel_id)] = {
            "apps": [app],
            "endpoints": {app: endpoint},
            "data": {},
        }
        self._write(state)
        return rel_id

    def add_remote_app(self, app: str, *, units: int = 1) -> list[str]:
        """An application whose charm does not run here (its databags are set by the test)."""
        names = [f"{app}/{index}" for index in range(units)]
        state = self.state
        state["apps"][app] = {"charm": None, "units": names, "leader": names[0], "config": {}}
        self._write(state)
        return names

    def set_bag(self, rel_id: int, owner: str, data: dict[str, str]) -> None:
        """What the remote side (a unit or an application) published in its databag."""
        state = self.state
        state["relations"][str(rel_id)]["data"][owner] = dict(data)
        self._write(state)

    def user_secret(self, content: dict[str, str], *grant_to: str, owner: str = "") -> str:
        """`juju add-secret` + `juju grant-secret` (or a remote app's secret): return its id."""
        secret_id = f"secret:user{next(self._ids):016d}"
        state = self.state
        state["secrets"][secret_id] = {
            "owner": owner or "<model>",
            "label": None,
            "description": None,
            "revisions": [content],
            "grants": list(grant_to),
            "consumers": {},
        }
        self._write(state)
        return secret_id

    def offer_packages(self, versions: dict[str, str]) -> None:
        """Let apt install these packages (name: Debian version) on every machine."""
        self._update(archive=dict(versions))

    def rotate_user_secret(self, secret_id: str, content: dict[str, str]) -> None:
        """`juju update-secret`: a new revision (the test runs secret-changed)."""
        state = self.state
        state["secrets"][secret_id]["revisions"].append(content)
        self._write(state)

    def bag(self, rel_id: int, owner: str) -> dict[str, str]:
        """A relation databag (of a unit or an application)."""
        return self.state["relations"][str(rel_id)]["data"].get(owner, {})

    def status(self, owner: str) -> tuple[str, str]:
        """The status a unit (or, for its leader, an application) last set."""
        status, message = self.state["status"].get(owner, ["unknown", ""])
        return status, message

    def machine(self, unit: str) -> Path:
        """The unit's machine directories: `machine(u) / "etc/cron.d"` and so on."""
        return self._unit_dir(unit) / "machine"

    def calls(self, unit: str, tool: str) -> list[list[str]]:
        """The arguments of every call `unit` made to `tool`."""
        return [call[2:] for call in self.state["calls"] if call[:2] == [unit, tool]]

    # -- running hooks and actions ---------------------------------------------------------

    def hook(
        self,
        unit: str,
        hook: str,
        *,
        relation: int | None = None,
        remote_unit: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        """Dispatch `hook` on `unit` (relation hooks name the relation and remote unit)."""
        env = {"JUJU_HOOK_NAME": hook, **(extra_env or {})}
        if relation is not None:
            rel = self.state["relations"][str(relation)]
            app = unit.split("/")[0]
            remote_app = next((a for a in rel["apps"] if a != app), app)
            env.update(
                JUJU_RELATION=rel["endpoints"][app],
                JUJU_RELATION_ID=f"{rel['endpoints'][app]}:{relation}",
                JUJU_REMOTE_APP=remote_app,
            )
            if remote_unit is not None:
                env["JUJU_REMOTE_UNIT"] = remote_unit
        return self._dispatch(unit, f"hooks/{hook}", env)

    def action(self, unit: str, action: str, **params: Any) -> ActionRun:
        """Run `action` on `unit` with `params` (defaults from actions.yaml filled in)."""
        charm = self.state["apps"][unit.split("/")[0]]["charm"]
        spec = yaml.safe_load((self.charms[charm] / "actions.yaml").read_text())[action]
        defaults = {
            key: value["default"]
            for key, value in (spec.get("params") or {}).items()
            if "default" in value
        }
        action_id = str(next(self._ids))
        state = self.state
        state["actions"][action_id] = {
            "name": action,
            "params": {**defaults, **params},
            "results": {},
            "logs": [],
            "failed": None,
        }
        self._write(state)
        env = {"JUJU_ACTION_NAME": action, "JUJU_ACTION_UUID": action_id}
        run = self._dispatch(unit, f"actions/{action}", env)
        record = self.state["actions"][action_id]
        return ActionRun(
            **dataclasses.asdict(run), results=record["results"], failed=record["failed"]
        )

    def _dispatch(self, unit: str, path: str, extra: dict[str, str]) -> Run:
        logged = len(self.state["log"])
        unit_dir = self._unit_dir(unit)
        env = {
            "PATH": f"{self.bin}:{base_python().parent}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "HOME": str(unit_dir),
            "FAKE_JUJU_STATE": str(self.state_path),
            "MACHINE_ROOT": str(unit_dir / "machine"),
            "JUJU_CHARM_DIR": str(unit_dir / "charm"),
            "JUJU_UNIT_NAME": unit,
            "JUJU_MODEL_NAME": self.state["model"]["name"],
            "JUJU_MODEL_UUID": self.state["model"]["uuid"],
            "JUJU_VERSION": JUJU_VERSION,
            "JUJU_DISPATCH_PATH": path,
            "JUJU_CONTEXT_ID": f"{unit}-{path}-{next(self._ids)}",
            **extra,
        }
        sandbox = SANDBOX.format(targets=" ".join(MACHINE_DIRS))
        started = time.monotonic()
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", sandbox],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log = [
            f"{level} {message}"
            for who, level, message in self.state["log"][logged:]
            if who == unit
        ]
        seconds = time.monotonic() - started
        return Run(unit, path, result.returncode, result.stdout, result.stderr, log, seconds)

    def _unit_dir(self, unit: str) -> Path:
        return self.root / "units" / unit.replace("/", "-")


def _config_defaults(config_yaml: Path) -> dict[str, Any]:
    options = yaml.safe_load(config_yaml.read_text()).get("options") or {}
    return {name: spec["default"] for name, spec in options.items() if "default" in spec}


def sandbox_works() -> str:
    """Why the sandbox cannot run here ("" when it can)."""
    missing = [target for target in MACHINE_DIRS if not os.path.isdir(target)]
    if missing:
        return f"missing directories to mount over: {', '.join(missing)} (run `make deps`)"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"`unshare --mount` fails ({probe.stderr.strip()}): the tier needs root"
    return ""
