"""The fake hook tools enforce the Juju rules the dispatch tier relies on."""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import hooktools
from .hooktools import MAX_ARG_STRLEN, ToolError


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """Two applications (two manager units, one db unit) and one relation between them."""
    state = {
        "model": {"name": "m", "uuid": "u"},
        "apps": {
            "manager": {"units": ["manager/0", "manager/1"], "leader": "manager/0", "config": {}},
            "db": {"units": ["db/0"], "leader": "db/0", "config": {"flavour": "mysql"}},
            "other": {"units": ["other/0"], "leader": "other/0", "config": {}},
        },
        "relations": {
            "1": {
                "apps": ["manager", "db"],
                "endpoints": {"manager": "database-backup", "db": "database-backup"},
                "data": {"db/0": {"jobs": "[]"}, "db": {"x": "1"}},
            },
            "2": {"apps": ["manager"], "endpoints": {"manager": "peers"}, "data": {}},
        },
        "secrets": {},
        "actions": {"7": {"params": {}, "results": {}, "logs": [], "failed": None}},
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
    path = tmp_path / "model.json"
    path.write_text(json.dumps(state))
    return path


def call(model: Path, unit: str, tool: str, *args: str, stdin: str = "", **env: str) -> Any:
    return hooktools.run(tool, list(args), {"JUJU_UNIT_NAME": unit, **env}, stdin, model)


def state(model: Path) -> dict[str, Any]:
    return json.loads(model.read_text())


def test_only_the_leader_writes_application_data(model: Path):
    with pytest.raises(ToolError, match="not the leader"):
        call(model, "manager/1", "relation-set", "-r", "database-backup:1", "--app", "--file", "-",
             stdin='{"jobs": "[]"}')  # fmt: skip

    call(model, "manager/0", "relation-set", "-r", "database-backup:1", "--app", "--file", "-",
         stdin='{"jobs": "[]"}')  # fmt: skip

    assert state(model)["relations"]["1"]["data"]["manager"] == {"jobs": "[]"}


def test_a_unit_writes_its_own_bag_and_reads_the_remote_side(model: Path):
    call(model, "manager/1", "relation-set", "-r", "1", "--file", "-", stdin='{"a": "b"}')

    assert state(model)["relations"]["1"]["data"] == {
        "db/0": {"jobs": "[]"},
        "db": {"x": "1"},
        "manager/1": {"a": "b"},
    }
    assert call(model, "manager/1", "relation-get", "--format=json", "-r", "1", "-", "db/0") == {
        "jobs": "[]"
    }
    assert call(model, "manager/1", "relation-get", "-r", "1", "--app", "-", "db") == {"x": "1"}
    with pytest.raises(ToolError, match="only the leader"):
        call(model, "manager/1", "relation-get", "-r", "1", "--app", "-", "manager")
    with pytest.raises(ToolError, match="permission denied"):
        call(model, "manager/1", "relation-get", "-r", "1", "-", "other/0")
    with pytest.raises(ToolError, match="not found"):
        call(model, "other/0", "relation-get", "-r", "1", "-", "db/0")


def test_peer_application_data_is_readable_by_every_unit(model: Path):
    call(model, "manager/0", "relation-set", "-r", "peers:2", "--app", "--file", "-",
         stdin='{"history": "[]"}')  # fmt: skip

    assert call(model, "manager/1", "relation-get", "-r", "2", "--app", "-", "manager") == {
        "history": "[]"
    }


def test_application_secrets_are_created_and_managed_by_the_leader_only(model: Path):
    with pytest.raises(ToolError, match="not the leader"):
        call(model, "manager/1", "secret-add", "--owner", "application", "access-key=a")
    own = call(model, "manager/1", "secret-add", "--owner", "unit", "--label", "mine", "pass=x1")
    app = call(model, "manager/0", "secret-add", "--owner", "application", "key=k1")

    assert call(model, "manager/1", "secret-get", "--label", "mine") == {"pass": "x1"}
    assert call(model, "manager/1", "secret-get", app) == {"key": "k1"}  # the app's units read
    with pytest.raises(ToolError, match="only the leader"):
        call(model, "manager/1", "secret-set", app, "key=k2")
    with pytest.raises(ToolError, match="not found"):
        call(model, "manager/0", "secret-get", own)  # another unit's secret


def test_secret_get_needs_a_grant_and_tracks_the_consumed_revision(model: Path):
    secret = call(model, "manager/0", "secret-add", "--owner", "application", "key=k1")
    with pytest.raises(ToolError, match="not granted"):
        call(model, "db/0", "secret-get", secret)
    with pytest.raises(ToolError, match="only the leader"):
        call(model, "manager/1", "secret-grant", "--relation", "1", secret)

    call(model, "manager/0", "secret-grant", "--relation", "1", secret)
    first = call(model, "db/0", "secret-get", secret)
    call(model, "manager/0", "secret-set", secret, "key=k2")

    assert first == {"key": "k1"}
    assert call(model, "db/0", "secret-get", secret) == {"key": "k1"}
    assert call(model, "db/0", "secret-get", secret, "--peek") == {"key": "k2"}
    assert call(model, "db/0", "secret-get", secret, "--refresh") == {"key": "k2"}
    with pytest.raises(ToolError, match="not found"):
        call(model, "other/0", "secret-get", secret)


@pytest.mark.parametrize("key", ["ab", "abc-", "Access", "a_key", "1key", "a--b"])
def test_secret_content_keys_follow_juju_rules(model: Path, key: str):
    with pytest.raises(ToolError, match="not valid"):
        call(model, "manager/0", "secret-add", f"{key}=value")


def test_secret_key_pattern():
    valid = ["abc", "access-key", "secret-key", "key2", "a-b-c"]
    invalid = ["-abc", "ab", "abc-", "a--b", "Abc", "a_b", "9ab"]

    assert [key for key in valid if hooktools.SECRET_KEY.match(key)] == valid
    assert [key for key in invalid if hooktools.SECRET_KEY.match(key)] == []


def test_secret_content_from_files_as_ops_passes_it(model: Path, tmp_path: Path):
    (tmp_path / "access-key").write_text("AKIA")

    secret = call(model, "manager/0", "secret-add", f"access-key#file={tmp_path / 'access-key'}")

    assert call(model, "manager/0", "secret-get", secret) == {"access-key": "AKIA"}


def test_one_action_set_argument_over_128_kib_fails_like_execve(model: Path):
    fits = "x" * (MAX_ARG_STRLEN - 1 - len("table="))
    call(model, "manager/0", "action-set", f"table={fits}", JUJU_ACTION_UUID="7")

    with pytest.raises(ToolError, match="Argument list too long") as refused:
        call(model, "manager/0", "action-set", f"table={fits}y", JUJU_ACTION_UUID="7")

    assert refused.value.code != 0
    assert state(model)["actions"]["7"]["results"] == {"table": fits}
    assert "table=<redacted>" in state(model)["calls"][0]  # results never recorded


def test_the_kernel_refuses_the_same_argument_when_the_tool_is_executed(
    model: Path, tmp_path: Path
):
    (tmp_path / "action-set").symlink_to(Path(hooktools.__file__).resolve())
    env = {"FAKE_JUJU_STATE": str(model), "JUJU_UNIT_NAME": "manager/0", "JUJU_ACTION_UUID": "7"}

    with pytest.raises(OSError, match="Argument list too long") as refused:
        subprocess.run(
            [tmp_path / "action-set", "table=" + "x" * MAX_ARG_STRLEN], env=env, check=False
        )

    assert refused.value.errno == errno.E2BIG  # what a charm's action-set call meets


def test_action_set_keys_follow_juju_rules(model: Path):
    with pytest.raises(ToolError, match="lowercase alphanumeric"):
        call(model, "manager/0", "action-set", "Bad_Key=1", JUJU_ACTION_UUID="7")


def test_juju_exec_refuses_inside_a_hook_context(model: Path):
    with pytest.raises(ToolError, match="inside a hook context"):
        call(model, "db/0", "juju-exec", "db/0", "true", JUJU_CONTEXT_ID="db/0-1")

    call(model, "db/0", "juju-exec", "db/0", "true")  # from cron or a worker: fine


def test_package_tools_install_nothing(model: Path):
    with pytest.raises(ToolError, match="install no packages") as refused:
        call(model, "db/0", "apt-get", "install", "-y", "mysql-server")

    assert refused.value.code == 100
    assert state(model)["calls"] == [["db/0", "apt-get", "install", "-y", "mysql-server"]]


def test_systemctl_remembers_what_it_started_per_unit(model: Path):
    with pytest.raises(ToolError):
        call(model, "db/0", "systemctl", "is-active", "--quiet", "mysql")
    call(model, "db/0", "systemctl", "restart", "mysql")

    call(model, "db/0", "systemctl", "is-active", "--quiet", "mysql")
    with pytest.raises(ToolError):
        call(model, "manager/0", "systemctl", "is-active", "--quiet", "mysql")


def test_the_script_answers_to_the_name_it_is_called_by(model: Path, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("is-leader", "relation-set", "relation-ids"):
        (bin_dir / tool).symlink_to(Path(hooktools.__file__).resolve())
    env = {"FAKE_JUJU_STATE": str(model), "JUJU_UNIT_NAME": "manager/1", "PATH": "/usr/bin"}

    leader = subprocess.run(
        [bin_dir / "is-leader", "--format=json"], env=env, capture_output=True, text=True
    )
    refused = subprocess.run(
        [bin_dir / "relation-set", "-r", "1", "--app", "--file", "-"],
        env=env,
        input='{"a": "b"}',
        capture_output=True,
        text=True,
    )
    ids = subprocess.run(
        [bin_dir / "relation-ids", "database-backup", "--format=json"],
        env=env,
        capture_output=True,
        text=True,
    )

    assert (leader.returncode, json.loads(leader.stdout)) == (0, False)
    assert refused.returncode != 0
    assert "not the leader" in refused.stderr
    assert json.loads(ids.stdout) == ["database-backup:1"]


def test_apt_installs_what_the_archive_offers_and_leaves_the_server_binary(
    model: Path, tmp_path: Path
):
    data = state(model)
    data["archive"] = {"mariadb-server": "1:10.11.6-0+deb12u1", "mariadb-backup": "1:10.11.6-1"}
    model.write_text(json.dumps(data))
    env = {"MACHINE_ROOT": str(tmp_path / "machine")}

    with pytest.raises(ToolError, match="no packages found"):
        call(model, "db/0", "dpkg", "-l", "mariadb-server")
    shown = call(model, "db/0", "apt-cache", "show", "mariadb-server")
    call(model, "db/0", "apt-get", "-y", "install", "mariadb-server=10.11.6-0+deb12u1", **env)
    with pytest.raises(ToolError, match="Unable to locate package zstd"):
        call(model, "db/0", "apt-get", "-y", "install", "zstd", **env)

    assert "Version: 1:10.11.6-0+deb12u1" in shown
    assert "ii  mariadb-server  1:10.11.6-0+deb12u1" in call(
        model, "db/0", "dpkg", "-l", "mariadb-server"
    )
    assert (tmp_path / "machine/usr/sbin/mariadbd").is_symlink()
    assert "Ver 10.11.6-MariaDB" in call(model, "db/0", "mariadbd", "--version")
    with pytest.raises(ToolError, match="not installed"):
        call(model, "db/0", "mariabackup", "--version")  # its package is not installed
