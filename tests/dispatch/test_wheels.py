"""Every pinned package has a binary wheel for each base the charms are packed for.

The python part installs binary wheels only (`PIP_NO_BINARY=:none:`,
`PIP_ONLY_BINARY=:all:` in charmcraft.yaml) because the build environment has no
toolchain for cffi, cryptography, pydantic-core or rpds-py. That works only if PyPI has a
wheel of each pinned version for the base's Python and glibc: Ubuntu 22.04 (CPython 3.10,
glibc 2.35) and 24.04 (CPython 3.12, glibc 2.39), x86_64. `uv.lock`, which the pins are
exported from, lists every wheel PyPI has for each locked version, so this is checked
offline: the pins that apply on the base (their markers evaluated for it), and for each a
wheel whose tags the base's pip accepts (`packaging.tags`, as pip computes them).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from scripts.stage_charm import ROOT

from .packing import base_python

#: base -> (CPython version, glibc minor version); x86_64 (the charms' amd64 platforms)
BASES = {"ubuntu@22.04": ((3, 10), 35), "ubuntu@24.04": ((3, 12), 39)}


def supported_tags(python: tuple[int, int], glibc_minor: int) -> set[Tag]:
    """The wheel tags pip accepts on CPython `python` with glibc 2.`glibc_minor`, x86_64."""
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014_x86_64", 12: "manylinux2010_x86_64", 5: "manylinux1_x86_64"}
    platforms += [alias for needs, alias in legacy.items() if glibc_minor >= needs]
    return set(cpython_tags(python, platforms=platforms)) | set(
        compatible_tags(python, f"cp{python[0]}{python[1]}", platforms=platforms)
    )


def locked_wheels(lock_text: str) -> dict[tuple[str, str], list[str]]:
    """(name, version) -> wheel file names, for every package in a uv.lock."""
    wheels = {}
    for block in lock_text.split("\n[[package]]\n")[1:]:
        name = re.search(r'^name = "([^"]+)"', block, re.MULTILINE)
        version = re.search(r'^version = "([^"]+)"', block, re.MULTILINE)
        if name and version:
            key = (canonicalize_name(name.group(1)), version.group(1))
            wheels[key] = re.findall(r'/([^/"]+\.whl)"', block)
    return wheels


def missing_wheels(
    pins: list[str], wheels: dict[tuple[str, str], list[str]], base: tuple[tuple[int, int], int]
) -> list[str]:
    """The pins that apply on `base` and have no wheel it accepts."""
    (major, minor), glibc_minor = base
    environment = {
        "python_version": f"{major}.{minor}",
        "python_full_version": f"{major}.{minor}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
    }
    accepted = supported_tags((major, minor), glibc_minor)
    missing = []
    for line in pins:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = str(next(iter(requirement.specifier)).version)
        files = wheels.get((canonicalize_name(requirement.name), version), [])
        if not any(accepted & set(parse_wheel_filename(file)[3]) for file in files):
            missing.append(f"{requirement.name}=={version}")
    return missing


def staged_pins(primed: dict[str, Path]) -> list[str]:
    return sorted(
        {
            line
            for charm_dir in primed.values()
            for line in (charm_dir / "requirements.txt").read_text().splitlines()
            if line and not line.startswith(("#", "."))
        }
    )


def test_the_bases_are_the_ones_charmcraft_packs_for(primed: dict[str, Path]):
    for charm_dir in primed.values():
        project = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
        assert set(project["platforms"]) == {f"{base}:amd64" for base in BASES}


def test_every_pin_has_a_wheel_for_each_base(primed: dict[str, Path]):
    wheels = locked_wheels((ROOT / "uv.lock").read_text())
    pins = staged_pins(primed)

    missing = {base: missing_wheels(pins, wheels, target) for base, target in BASES.items()}

    assert missing == {base: [] for base in BASES}


def test_a_pin_without_a_wheel_for_the_base_is_reported():
    wheels = {
        ("newlib", "2.0"): ["newlib-2.0-cp312-cp312-manylinux_2_39_x86_64.whl"],
        ("purelib", "1.0"): ["purelib-1.0-py3-none-any.whl"],
        ("sdistonly", "1.0"): [],
    }
    wheels[("legacy", "1.0")] = ["legacy-1.0-cp310-cp310-manylinux2014_x86_64.whl"]
    pins = ["newlib==2.0", "purelib==1.0", "sdistonly==1.0", "oldonly==1.0 ; python_version < '3'"]

    assert missing_wheels(pins, wheels, BASES["ubuntu@22.04"]) == ["newlib==2.0", "sdistonly==1.0"]
    assert missing_wheels(pins, wheels, BASES["ubuntu@24.04"]) == ["sdistonly==1.0"]
    assert missing_wheels(["legacy==1.0"], wheels, ((3, 10), 35)) == []  # 2014 = glibc 2.17
    assert missing_wheels(["legacy==1.0"], wheels, ((3, 10), 12)) == ["legacy==1.0"]


def test_pip_still_builds_the_local_package_with_wheels_only(
    primed: dict[str, Path], tmp_path: Path
):
    """The part's environment (no source builds) must not stop pip building `./lib`."""
    project = yaml.safe_load((primed["mysql-server"] / "charmcraft.yaml").read_text())
    part = project["parts"]["charm"]
    part_env = {k: v for entry in part["build-environment"] for k, v in entry.items()}
    subprocess.run([base_python(), "-m", "venv", tmp_path / "venv"], check=True, timeout=120)
    env = {**os.environ, "PIP_NO_BINARY": ":all:", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.update(part_env)  # exported after the plugin's PIP_NO_BINARY, as craft-parts does

    result = subprocess.run(
        [tmp_path / "venv/bin/python", "-m", "pip", "install", "--no-deps",
         primed["mysql-server"] / "lib"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully installed database-backup" in result.stdout
