"""Every pinned package has a binary wheel for each base the charms are packed for.

The python part installs binary wheels (`PIP_NO_BINARY=:none:` in charmcraft.yaml) because
the build environment has no compiler toolchain for cffi, cryptography, pydantic-core or
rpds-py. That only works if PyPI has a wheel of each pinned version for the base's Python
and glibc: Ubuntu 22.04 (Python 3.10, glibc 2.35) and 24.04 (Python 3.12, glibc 2.39).
uv resolves the pins for those targets with source builds disabled (`--only-binary :all:`);
it fails, naming the package, when one has no usable wheel. Needs PyPI (as `make deps`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from .packing import base_python, uv

BASES = {
    "ubuntu@22.04": ("3.10", "x86_64-manylinux_2_35"),
    "ubuntu@24.04": ("3.12", "x86_64-manylinux_2_39"),
}


def test_the_bases_are_the_ones_charmcraft_packs_for(primed: dict[str, Path]):
    for charm_dir in primed.values():
        project = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
        assert {name.split(":")[0] for name in project["platforms"]} == set(BASES)


def test_every_pin_has_a_wheel_for_each_base(primed: dict[str, Path], tmp_path: Path):
    pins = sorted(
        {
            line
            for charm_dir in primed.values()
            for line in (charm_dir / "requirements.txt").read_text().splitlines()
            if line and not line.startswith(("#", "."))
        }
    )
    (tmp_path / "pins.txt").write_text("\n".join(pins) + "\n")
    resolving = {
        base: resolve(tmp_path, python, platform) for base, (python, platform) in BASES.items()
    }

    failures = {}
    for base, process in resolving.items():
        _, stderr = process.communicate(timeout=180)
        if process.returncode != 0:
            failures[base] = stderr.strip()

    assert failures == {}, "\n".join(f"{base}: {error}" for base, error in failures.items())


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


def resolve(directory: Path, python: str, platform: str) -> subprocess.Popen[str]:
    """Start resolving `pins.txt` in `directory` from wheels only, for one Python/platform."""
    argv = [uv(), "pip", "compile", "--quiet", "--no-deps", "--only-binary", ":all:"]
    argv += ["--python-version", python, "--python-platform", platform, "pins.txt"]
    return subprocess.Popen(
        argv, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
