"""The staging step of `make pack` builds a directory charmcraft can pack, for both charms.

charmcraft itself is not run here (no charmcraft, no LXD in CI): these tests check what it
would be given - the charm's files, the shared package with its schemas as real files, a
`charmcraft.yaml` whose python part installs `requirements.txt`, and a requirements file that
pins every dependency and points only at directories inside the staged tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import stage_charm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("build")
    return {name: stage_charm.stage(charm, out) for name, charm in stage_charm.CHARMS.items()}


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_staged_tree_holds_the_charm_and_the_package(staged: dict[str, Path], name: str):
    target = staged[name]
    source = stage_charm.CHARMS[name].directory

    for file in ("metadata.yaml", "config.yaml", "actions.yaml"):
        assert (target / file).read_bytes() == (source / file).read_bytes()
    # charmcraft.yaml as written, plus the step that ships the venv's bytecode
    project = (source / "charmcraft.yaml").read_text()
    assert (target / "charmcraft.yaml").read_text() == stage_charm.with_bytecode_step(project)
    assert "compileall" in (target / "charmcraft.yaml").read_text()
    assert yaml.safe_load((target / "metadata.yaml").read_text())["name"] == name
    charm_files = sorted(p.relative_to(source / "src") for p in (source / "src").rglob("*.py"))
    staged_files = sorted(p.relative_to(target / "src") for p in (target / "src").rglob("*.py"))
    assert staged_files == charm_files
    assert (target / "lib" / "pyproject.toml").is_file()
    schemas = target / "lib" / "database_backup" / "interface" / "schemas"
    assert not schemas.is_symlink()
    assert sorted(p.name for p in schemas.iterdir()) == ["provider.json", "requirer.json"]
    assert not list(target.rglob("__pycache__"))
    assert stage_charm.check_staged(target) == []


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_charmcraft_yaml_installs_the_staged_requirements(staged: dict[str, Path], name: str):
    target = staged[name]
    project = yaml.safe_load((target / "charmcraft.yaml").read_text())

    assert project["type"] == "charm"
    python_parts = [p for p in project["parts"].values() if p.get("plugin") == "python"]
    assert len(python_parts) == 1
    part = python_parts[0]
    assert part["source"] == "."
    for requirements in part["python-requirements"]:
        assert (target / part["source"] / requirements).is_file()
    assert set(part.get("after", [])) <= set(project["parts"])


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_requirements_pin_every_dependency_and_point_inside(staged: dict[str, Path], name: str):
    target = staged[name]
    lines = (target / "requirements.txt").read_text().splitlines()
    direct = stage_charm.requirement_names(
        (stage_charm.CHARMS[name].directory / "requirements.txt").read_text().splitlines()
    )

    pins = [line for line in lines if line and not line.startswith(("#", "."))]
    assert pins
    assert all("==" in line for line in pins), "every package is pinned"
    pinned = set(stage_charm.requirement_names(pins))
    assert set(direct) <= pinned
    assert {"boto3", "zstandard", "cryptography", "jsonschema"} <= pinned  # lib's own deps
    assert stage_charm.local_paths(target / "requirements.txt") == [(target / "lib").resolve()]


def test_mysql_server_leaves_out_what_only_the_manager_needs(staged: dict[str, Path]):
    manager = set(
        stage_charm.requirement_names(
            (staged["backup-manager"] / "requirements.txt").read_text().splitlines()
        )
    )
    mysql = set(
        stage_charm.requirement_names(
            (staged["mysql-server"] / "requirements.txt").read_text().splitlines()
        )
    )

    assert {"croniter", "object-storage-charmlib"} <= manager
    assert not {"croniter", "object-storage-charmlib"} & mysql
    assert mysql < manager


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("backup-manager", ["charm", "backup_manager.manager"]),
        ("mysql-server", ["charm", "mysql_provider.runner", "database_backup.cli"]),
    ],
)
def test_staged_charm_imports_from_its_own_tree(
    staged: dict[str, Path], name: str, modules: list[str]
):
    target = staged[name]
    script = (
        "import importlib, json, sys\n"
        f"mods = [importlib.import_module(m) for m in {modules!r}]\n"
        "from database_backup.interface.schemas import load_schema\n"
        "import database_backup\n"
        "load_schema('requirer'); load_schema('provider')\n"
        "print(json.dumps([database_backup.__file__] + [m.__file__ for m in mods]))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{target / 'src'}{os.pathsep}{target / 'lib'}"}

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    files = yaml.safe_load(result.stdout)
    assert all(Path(f).is_relative_to(target) for f in files), files


def test_a_requirements_path_outside_the_tree_is_reported(tmp_path: Path):
    target = stage_charm.stage(stage_charm.CHARMS["mysql-server"], tmp_path)
    (target / "requirements.txt").write_text("ops==3.9.0\n../lib\n")

    problems = stage_charm.check_staged(target)

    assert any("outside the charm" in p for p in problems), problems


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_python_part_installs_binary_wheels(name: str):
    """The python part clears the plugin's PIP_NO_BINARY=:all: in its build-environment.

    With `:all:` every pinned package builds from source, and cffi, cryptography,
    pydantic-core and rpds-py need a C/Rust toolchain and -dev packages the build
    environment lacks. The part's environment is exported after the plugin's, so it wins.
    """
    project = yaml.safe_load((stage_charm.CHARMS[name].directory / "charmcraft.yaml").read_text())
    part = next(p for p in project["parts"].values() if p.get("plugin") == "python")

    environment = {k: v for entry in part.get("build-environment", []) for k, v in entry.items()}

    assert environment.get("PIP_NO_BINARY") == ":none:", part
    assert environment.get("PIP_ONLY_BINARY") == ":all:", part  # no silent source build


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_metadata_assumes_juju_3_1(name: str):
    """Secrets, secret-typed config options and juju-exec need Juju 3.1 or later."""
    metadata = yaml.safe_load((stage_charm.CHARMS[name].directory / "metadata.yaml").read_text())

    assert "juju >= 3.1" in metadata.get("assumes", []), metadata.get("assumes")
