#!/usr/bin/env python3
"""Fake Juju hook tools that enforce Juju's rules: a test double, not a Juju.

One script answers to every tool name (`relation-set`, `secret-get`, `juju-exec`, and the
workload tools `apt-get`, `systemctl`, `mysql`...): the dispatch tests link it into a
`bin/` directory under each name and put that directory first on the hook's PATH. The
model lives in one JSON file (`FAKE_JUJU_STATE`); the hook's identity comes from the
environment Juju would set (`JUJU_UNIT_NAME`, `JUJU_RELATION_ID`, `JUJU_ACTION_UUID`...).

The rules enforced are the ones a charm most easily breaks outside Juju:

- only the leader writes application data or reads its own app bag (peer bags excepted);
  a unit writes only its own unit bag; reading the remote side works for related units;
- only the leader creates or manages application-owned secrets; `secret-get` needs
  ownership or a grant; content keys follow Juju's pattern;
- one argument over MAX_ARG_STRLEN (128 KiB) fails the way Linux's `execve` does (E2BIG:
  when the tool is executed the kernel refuses first, and the charm's call raises OSError;
  the fake's own check holds the same limit when it is called in-process);
- `juju-exec` refuses to run inside a hook context (JUJU_CONTEXT_ID set);
- package tools install only what the model's `archive` offers (nothing by default), and
  a server package leaves its binary in the machine's /usr/sbin; `systemctl` records and
  pretends; the SQL clients record that they ran, never what.

Every call is recorded in the state's `calls` list (arguments, never stdin).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Linux's limit on one execve argument (32 pages), terminating NUL included.
MAX_ARG_STRLEN = 128 * 1024
#: Juju's rule for secret content keys (juju/juju core/secrets: `keyRegExp`).
SECRET_KEY = re.compile(r"^([a-z](?:-?[a-z0-9]){2,})$")
ACTION_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
PACKAGE_TOOLS = ("apt-get", "apt-cache", "apt", "dpkg", "snap")
SQL_CLIENTS = ("mysql", "mariadb")
#: what `apt-get install` of a server package puts in /usr/sbin (a link to this script)
SERVER_BINARIES = {"mysql-server": "mysqld", "mariadb-server": "mariadbd"}
#: `--version` of the servers and backup tools: (package that installs it, output format)
VERSIONED = {
    "mysqld": ("mysql-server", "/usr/sbin/mysqld  Ver {v} for Linux on x86_64 ((Ubuntu))"),
    "mariadbd": ("mariadb-server", "/usr/sbin/mariadbd  Ver {v}-MariaDB for debian-linux-gnu"),
    "xtrabackup": ("percona-xtrabackup", "xtrabackup version {v} based on MySQL server {v}"),
    "mariabackup": ("mariadb-backup", "mariabackup based on MariaDB server {v}-MariaDB"),
    "mariadb-backup": ("mariadb-backup", "mariabackup based on MariaDB server {v}-MariaDB"),
}


class ToolError(Exception):
    """The tool refuses: the message goes to stderr, the exit code is non-zero."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[dict[str, Any]]:
    """The model, read and written back under an exclusive lock, also after a refusal.

    Every tool refuses before it changes anything, so a refused call stays recorded.
    """
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        try:
            yield state
        finally:
            path.write_text(json.dumps(state, indent=1, sort_keys=True))


class Tools:
    """The hook tools, one method per tool, for the unit named in the environment."""

    def __init__(self, state: dict[str, Any], env: dict[str, str], stdin: str) -> None:
        self.state = state
        self.env = env
        self.stdin = stdin
        self.unit = env.get("JUJU_UNIT_NAME", "")
        self.app = self.unit.split("/")[0]

    # -- identity and model ------------------------------------------------------------

    @property
    def leader(self) -> bool:
        return self.state["apps"][self.app]["leader"] == self.unit

    def _relation(self, ref: str | None) -> tuple[str, dict[str, Any]]:
        ref = ref or self.env.get("JUJU_RELATION_ID")
        if not ref:
            raise ToolError("no relation id specified")
        rel_id = ref.rsplit(":", 1)[-1]
        relation = self.state["relations"].get(rel_id)
        if relation is None or self.app not in relation["apps"]:
            raise ToolError(f"relation {ref} not found")
        return rel_id, relation

    def _remote_app(self, relation: dict[str, Any]) -> str:
        others = [app for app in relation["apps"] if app != self.app]
        return others[0] if others else self.app

    def _units(self, app: str) -> list[str]:
        return list(self.state["apps"][app]["units"])

    # -- config, leadership, logs, status ---------------------------------------------

    def config_get(self, args: list[str]) -> Any:
        config = self.state["apps"][self.app]["config"]
        keys = [a for a in args if not a.startswith("--")]
        return config.get(keys[0]) if keys else config

    def is_leader(self, args: list[str]) -> Any:
        return self.leader

    def juju_log(self, args: list[str]) -> None:
        level = args[args.index("--log-level") + 1] if "--log-level" in args else "INFO"
        message = args[args.index("--") + 1] if "--" in args else args[-1]
        self.state["log"].append([self.unit, level, message])

    def status_set(self, args: list[str]) -> None:
        app = "--application=True" in args or "--application=true" in args
        words = [a for a in args if not a.startswith("--application")]
        status, message = words[0], words[2] if len(words) > 2 else ""
        if app and not self.leader:
            raise ToolError("setting application status: this unit is not the leader")
        self.state["status"][self.app if app else self.unit] = [status, message]

    def status_get(self, args: list[str]) -> Any:
        if "--application=true" in args:
            if not self.leader:
                raise ToolError("finding application status: this unit is not the leader")
            status, message = self.state["status"].get(self.app, ["unknown", ""])
            return {
                "application-status": {"status": status, "message": message, "status-data": {}},
                "units": {},
            }
        status, message = self.state["status"].get(self.unit, ["unknown", ""])
        return {"status": status, "message": message, "status-data": {}}

    def application_version_set(self, args: list[str]) -> None:
        self.state["versions"][self.app] = args[-1]

    def opened_ports(self, args: list[str]) -> Any:
        return self.state["ports"].get(self.unit, [])

    def open_port(self, args: list[str]) -> None:
        self.state["ports"].setdefault(self.unit, []).append("/".join(reversed(args[-2:])))

    def close_port(self, args: list[str]) -> None:
        self.state["ports"][self.unit] = []

    # -- relations ---------------------------------------------------------------------

    def relation_ids(self, args: list[str]) -> Any:
        endpoint = next(a for a in args if not a.startswith("--"))
        return [
            f"{endpoint}:{rel_id}"
            for rel_id, relation in self.state["relations"].items()
            if relation["endpoints"].get(self.app) == endpoint
        ]

    def relation_list(self, args: list[str]) -> Any:
        _, relation = self._relation(_option(args, "-r"))
        remote = self._remote_app(relation)
        if "--app" in args:
            return remote
        return [unit for unit in self._units(remote) if unit != self.unit]

    def relation_get(self, args: list[str]) -> Any:
        rel_id, relation = self._relation(_option(args, "-r"))
        words = _positional(args, with_values=("-r",))
        key = words[0] if words and words[0] != "-" else None
        owner = words[1] if len(words) > 1 else self.env.get("JUJU_REMOTE_UNIT", self.unit)
        peer = len(relation["apps"]) == 1
        if "--app" in args:
            owner = owner.split("/")[0] if owner else self._remote_app(relation)
            if owner == self.app and not peer and not self.leader:
                raise ToolError("permission denied: only the leader reads its own app data")
        elif owner.split("/")[0] not in relation["apps"]:
            raise ToolError(f"permission denied: {owner} is not in relation {rel_id}")
        bag = relation["data"].get(owner, {})
        return bag.get(key) if key else bag

    def relation_set(self, args: list[str]) -> None:
        _, relation = self._relation(_option(args, "-r"))
        owner = self.unit
        if "--app" in args:
            if not self.leader:
                raise ToolError("cannot write relation settings: this unit is not the leader")
            owner = self.app
        data = json.loads(self.stdin) if "--file" in args else _pairs(args)
        bag = relation["data"].setdefault(owner, {})
        for key, value in data.items():
            if value == "":
                bag.pop(key, None)
            else:
                bag[key] = value

    def relation_model_get(self, args: list[str]) -> Any:
        return {"uuid": self.state["model"]["uuid"]}

    # -- secrets -----------------------------------------------------------------------

    def secret_add(self, args: list[str]) -> str:
        owner = _option(args, "--owner") or "application"
        if owner == "application" and not self.leader:
            raise ToolError("cannot create an application secret: this unit is not the leader")
        content = self._content(_positional(args, with_values=_SECRET_OPTIONS))
        secret_id = "secret:" + secrets.token_hex(10)
        self.state["secrets"][secret_id] = {
            "owner": self.app if owner == "application" else self.unit,
            "label": _option(args, "--label"),
            "description": _option(args, "--description"),
            "revisions": [content],
            "grants": [],
            "consumers": {},
        }
        return secret_id

    def secret_get(self, args: list[str]) -> Any:
        secret_id, secret = self._find(args)
        if self._owns(secret):
            return secret["revisions"][-1]
        if not self._granted(secret):
            raise ToolError(f"secret {secret_id} not found (not owned and not granted)")
        latest = len(secret["revisions"])
        consumer = secret["consumers"].setdefault(self.unit, {"revision": latest})
        if _positional(args, with_values=_SECRET_OPTIONS) and "--label" in args:
            consumer["label"] = _option(args, "--label")  # a consumer's own label
        if "--refresh" in args:
            consumer["revision"] = len(secret["revisions"])
        if "--peek" in args:
            return secret["revisions"][-1]
        return secret["revisions"][consumer["revision"] - 1]

    def secret_info_get(self, args: list[str]) -> Any:
        secret_id, secret = self._find(args)
        if not self._owns(secret):
            raise ToolError(f"secret {secret_id} not found (secret-info-get is for owners)")
        info = {"revision": len(secret["revisions"]), "label": secret["label"] or ""}
        return {secret_id: {**info, "owner": secret["owner"], "rotation": "never"}}

    def secret_set(self, args: list[str]) -> None:
        secret_id, secret = self._find(args)
        self._manage(secret_id, secret)
        words = _positional(args, with_values=_SECRET_OPTIONS)[1:]  # after the id
        if words:
            secret["revisions"].append(self._content(words))
        for option in ("label", "description"):
            if f"--{option}" in args:
                secret[option] = _option(args, f"--{option}")

    def secret_grant(self, args: list[str]) -> None:
        secret_id, secret = self._find(args)
        self._manage(secret_id, secret)
        _, relation = self._relation(_option(args, "--relation"))
        secret["grants"].append(_option(args, "--unit") or self._remote_app(relation))

    def secret_revoke(self, args: list[str]) -> None:
        secret_id, secret = self._find(args)
        self._manage(secret_id, secret)
        _, relation = self._relation(_option(args, "--relation"))
        target = _option(args, "--unit") or _option(args, "--app") or self._remote_app(relation)
        secret["grants"] = [grantee for grantee in secret["grants"] if grantee != target]

    def secret_remove(self, args: list[str]) -> None:
        secret_id, secret = self._find(args)
        self._manage(secret_id, secret)
        del self.state["secrets"][secret_id]

    def secret_ids(self, args: list[str]) -> Any:
        return [sid for sid, secret in self.state["secrets"].items() if self._owns(secret)]

    def _find(self, args: list[str]) -> tuple[str, dict[str, Any]]:
        words = _positional(args, with_values=_SECRET_OPTIONS)
        if words:
            secret_id = words[0] if words[0].startswith("secret:") else f"secret:{words[0]}"
            found = self.state["secrets"].get(secret_id)
            if found is None:
                raise ToolError(f"secret {secret_id} not found")
            return secret_id, found
        label = _option(args, "--label")
        for secret_id, secret in self.state["secrets"].items():
            owned = self._owns(secret) and secret["label"] == label
            consumed = secret["consumers"].get(self.unit, {}).get("label") == label
            if owned or consumed:
                return secret_id, secret
        raise ToolError(f"secret with label {label!r} not found")

    def _owns(self, secret: dict[str, Any]) -> bool:
        return secret["owner"] in (self.unit, self.app)

    def _granted(self, secret: dict[str, Any]) -> bool:
        return self.unit in secret["grants"] or self.app in secret["grants"]

    def _manage(self, secret_id: str, secret: dict[str, Any]) -> None:
        if not self._owns(secret):
            raise ToolError(f"secret {secret_id} not found (not owned by {self.unit})")
        if secret["owner"] == self.app and not self.leader:
            raise ToolError(f"permission denied: only the leader manages {secret_id}")

    @staticmethod
    def _content(words: list[str]) -> dict[str, str]:
        content: dict[str, str] = {}
        for word in words:
            key, _, value = word.partition("=")
            if key.endswith("#file"):
                key, value = key[: -len("#file")], Path(value).read_text()
            elif key.endswith("#base64"):
                key = key[: -len("#base64")]
            if not SECRET_KEY.match(key):
                raise ToolError(
                    f'key "{key}" not valid: secret keys are 3 or more lowercase letters, '
                    "digits and single hyphens, starting with a letter"
                )
            content[key] = value
        if not content:
            raise ToolError("missing secret value or filename")
        return content

    # -- actions -----------------------------------------------------------------------

    def _action(self) -> dict[str, Any]:
        uuid = self.env.get("JUJU_ACTION_UUID")
        if not uuid or uuid not in self.state["actions"]:
            raise ToolError("not running an action")
        return self.state["actions"][uuid]

    def action_get(self, args: list[str]) -> Any:
        params = self._action()["params"]
        keys = [a for a in args if not a.startswith("--")]
        return params.get(keys[0]) if keys else params

    def action_set(self, args: list[str]) -> None:
        results = self._action()["results"]
        for key, value in _pairs(args).items():
            if not all(ACTION_KEY.match(part) for part in key.split(".")):
                raise ToolError(f'key "{key}" must start and end with lowercase alphanumeric')
            results[key] = value

    def action_log(self, args: list[str]) -> None:
        self._action()["logs"].append(args[-1])

    def action_fail(self, args: list[str]) -> None:
        self._action()["failed"] = args[-1] if "--" in args else "action failed"

    # -- not hook tools: the machine's own commands ------------------------------------

    def juju_exec(self, args: list[str]) -> None:
        if self.env.get("JUJU_CONTEXT_ID"):
            raise ToolError(
                "juju-exec: cannot run inside a hook context (JUJU_CONTEXT_ID is set)", 2
            )

    def systemctl(self, args: list[str]) -> None:
        words = [a for a in args if not a.startswith("-")]
        verb, units = words[0], words[1:]
        active = self.state["services"].setdefault(self.unit, {})
        if verb in ("start", "restart", "enable") and ("--now" in args or verb != "enable"):
            active.update(dict.fromkeys(units, True))
        elif verb in ("stop", "disable"):
            active.update(dict.fromkeys(units, False))
        elif verb == "is-active" and not all(active.get(unit) for unit in units):
            raise ToolError("inactive", 3)

    def package_tool(self, tool: str, args: list[str]) -> Any:
        """apt-get/apt-cache/dpkg over the model's `archive` (empty: every call refused)."""
        archive: dict[str, str] = self.state["archive"]
        if not archive:
            raise ToolError("E: the dispatch tests install no packages (fake package tool)", 100)
        installed = self.state["installed"].setdefault(self.unit, {})
        words = _positional(args)
        if tool == "dpkg" and "--print-architecture" in args:
            return "amd64"
        if tool == "dpkg" and "-l" in args:
            if words[0] not in installed:
                raise ToolError(f"dpkg-query: no packages found matching {words[0]}")
            header = "Desired=Unknown\n|\n|/\n||/ Name Version Architecture Description\n+++-\n"
            return f"{header}ii  {words[0]}  {installed[words[0]]}  amd64  fake package"
        if tool == "apt-cache" and words[:1] == ["show"]:
            if words[1] not in archive:
                raise ToolError(f"E: No packages found: {words[1]}", 100)
            return f"Package: {words[1]}\nArchitecture: amd64\nVersion: {archive[words[1]]}"
        if tool == "apt-get" and words[:1] == ["update"]:
            return None
        if tool == "apt-get" and words[:1] == ["install"]:
            return self._install([word.split("=")[0] for word in words[1:]])
        raise ToolError(f"{tool} {' '.join(args)}: not faked", 100)

    def _install(self, packages: list[str]) -> None:
        missing = [name for name in packages if name not in self.state["archive"]]
        if missing:
            raise ToolError(f"E: Unable to locate package {missing[0]}", 100)
        machine = Path(self.env.get("MACHINE_ROOT") or "/nonexistent")
        for name in packages:
            self.state["installed"].setdefault(self.unit, {})[name] = self.state["archive"][name]
            if name in SERVER_BINARIES:
                binary = machine / "usr/sbin" / SERVER_BINARIES[name]
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.unlink(missing_ok=True)
                binary.symlink_to(Path(__file__).resolve())

    def version(self, tool: str, args: list[str]) -> str:
        """`mysqld --version` and the like: the version of the installed package."""
        package, output = VERSIONED[tool]
        version = self.state["installed"].get(self.unit, {}).get(package)
        if version is None or "--version" not in args:
            raise ToolError(f"{tool}: not installed on {self.unit}", 127)
        upstream = version.split(":")[-1].split("-")[0].split("+")[0]
        return output.format(v=upstream)

    def sql_client(self, args: list[str]) -> None:
        if self.stdin.strip() and "--version" not in args:
            self.state["sql"].append(len(self.stdin))


_SECRET_OPTIONS = ("--label", "--description", "--owner", "--expire", "--rotate", "--revision")
_SECRET_OPTIONS += ("--relation", "--unit", "--app", "--format")


def _option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _positional(args: list[str], with_values: tuple[str, ...] = ()) -> list[str]:
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_values:
            skip = True
        elif not arg.startswith("-") or arg == "-":
            words.append(arg)
    return words


def _pairs(args: list[str]) -> dict[str, str]:
    return dict(word.split("=", 1) for word in _positional(args, with_values=("-r",)))


def check_arguments(tool: str, args: list[str]) -> None:
    """Refuse what Linux's execve would refuse: one argument over MAX_ARG_STRLEN."""
    for arg in (tool, *args):
        if len(arg.encode()) + 1 > MAX_ARG_STRLEN:
            raise ToolError(
                f"{tool}: Argument list too long (E2BIG): one argument is "
                f"{len(arg.encode())} bytes, Linux allows {MAX_ARG_STRLEN - 1}",
                126,
            )


def run(tool: str, args: list[str], env: dict[str, str], stdin: str, state_path: Path) -> Any:
    """Run one tool against the model in `state_path`; return what it prints as JSON."""
    check_arguments(tool, args)
    with locked_state(state_path) as state:
        state["calls"].append([env.get("JUJU_UNIT_NAME", ""), tool, *_redacted(tool, args)])
        tools = Tools(state, env, stdin)
        if tool in PACKAGE_TOOLS:
            return tools.package_tool(tool, args)
        if tool in VERSIONED:
            return tools.version(tool, args)
        if tool in SQL_CLIENTS:
            return tools.sql_client(args)
        method = getattr(tools, tool.replace("-", "_"), None)
        if method is None:
            raise ToolError(f"{tool}: not faked by tests/dispatch/hooktools.py", 127)
        return method(args)


def _redacted(tool: str, args: list[str]) -> list[str]:
    if tool in ("action-set", "secret-add", "secret-set"):
        return [arg.split("=", 1)[0] + "=<redacted>" if "=" in arg else arg for arg in args]
    return args


def main() -> int:
    """Entry point: the tool is the name this script was called by."""
    tool = Path(sys.argv[0]).name
    reads_stdin = tool in ("relation-set", *SQL_CLIENTS)
    stdin = sys.stdin.read() if reads_stdin and sys.stdin is not None else ""
    state_path = Path(os.environ["FAKE_JUJU_STATE"])
    try:
        output = run(tool, sys.argv[1:], dict(os.environ), stdin, state_path)
    except ToolError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return exc.code
    if output is not None:
        print(output if isinstance(output, str) else json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
