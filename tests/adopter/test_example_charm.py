"""The adoption guide's example charm runs on the installed package, as an adopter runs it.

`examples/adopter-charm/` is copied out of the repository (a fresh charm), a fresh
virtualenv gets `pip install lib/` plus `ops[testing]`, pytest and pytest-interface-tester
(pinned to uv.lock's versions, so uv's cache serves them offline), and the charm's own
tests run there: the `database_backup` v0 interface tests and its Scenario tests (a backup,
a restore and a draft-style job with inline keys). Nothing of the repository is on the
import path: only what `pip install` put in the virtualenv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "adopter-charm"
SPEC_SCHEMAS = REPO / "interfaces" / "database_backup" / "v0" / "schemas"
#: what the guide tells an adopter to install for testing (besides the package itself)
TEST_REQUIREMENTS = ("ops[testing]", "pytest", "pytest-interface-tester")


def uv() -> str:
    """The uv binary (`make deps` installs it)."""
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if found is None:
        raise RuntimeError("uv is not installed: run `make deps` (or install uv)")
    return found


LOCKED = re.compile(r'^name = "([^"]+)"\nversion = "([^"]+)"\nsource = \{ registry', re.M)


def locked_versions() -> list[str]:
    """`name==version` of the registry packages uv.lock pins to one version (cache hits)."""
    found = LOCKED.findall((REPO / "uv.lock").read_text())
    names = [name for name, _ in found]
    return [f"{name}=={version}" for name, version in found if names.count(name) == 1]


def interface_branch() -> str:
    """The branch the interface tester clones (it sees committed files only)."""
    override = os.environ.get("INTERFACE_TESTS_BRANCH")
    if override:
        return override
    branch = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if branch == "HEAD":
        raise RuntimeError("detached HEAD: set INTERFACE_TESTS_BRANCH to the branch to test")
    return branch


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the repository's import path (tox sets PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def adopter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the copied example charm, the python of its fresh virtualenv)."""
    root = tmp_path_factory.mktemp("adopter")
    charm = root / "adopter-charm"
    shutil.copytree(EXAMPLE, charm, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    venv = root / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    constraints = root / "constraints.txt"
    constraints.write_text("\n".join(locked_versions()) + "\n")
    install = [uv(), "pip", "install", "--quiet", "--python", str(python)]
    install += ["-c", str(constraints), str(REPO / "lib"), *TEST_REQUIREMENTS]
    offline = subprocess.run(
        [*install, "--offline"], capture_output=True, text=True, env=clean_env()
    )
    if offline.returncode != 0:  # something is not in uv's cache yet: fetch it
        subprocess.run(install, check=True, env=clean_env())
    return charm, python


def test_the_package_is_imported_from_the_virtualenv(adopter: tuple[Path, Path]) -> None:
    charm, python = adopter
    where = subprocess.run(
        [str(python), "-c", "import database_backup; print(database_backup.__file__)"],
        cwd=charm,
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    assert Path(where).is_relative_to(python.parents[1]), where
    installed = Path(where).parent / "interface" / "schemas"
    assert not installed.is_symlink()
    for spec_file in SPEC_SCHEMAS.iterdir():
        assert (installed / spec_file.name).read_bytes() == spec_file.read_bytes()


def test_the_example_charm_passes_its_interface_and_scenario_tests(
    adopter: tuple[Path, Path],
) -> None:
    charm, python = adopter
    env = clean_env(
        INTERFACE_TESTS_REPO=f"file://{REPO}", INTERFACE_TESTS_BRANCH=interface_branch()
    )
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "--color=no"],
        cwd=charm,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    print(result.stdout[-4000:], result.stderr[-2000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for test in (
        "test_interface.py::test_database_backup_interface",
        "test_charm.py::test_a_backup_job_is_started_and_reported_running",
        "test_charm.py::test_a_restore_job_restores_the_backup_it_names",
        "test_charm.py::test_a_draft_style_job_with_inline_keys_runs_and_the_keys_stay_private",
    ):
        assert f"PASSED tests/{test}" in result.stdout, test


def test_a_copied_package_imports_and_loads_its_schemas(tmp_path: Path) -> None:
    """Vendoring by copying lib/ (no pip) keeps working: the schemas are real files."""
    shutil.copytree(REPO / "lib" / "database_backup", tmp_path / "database_backup")
    code = (
        "import database_backup; from database_backup.interface import schemas; "
        "[schemas.load_schema(side) for side in ('requirer', 'provider')]; "
        "print(database_backup.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(result.stdout.strip()).is_relative_to(tmp_path)
