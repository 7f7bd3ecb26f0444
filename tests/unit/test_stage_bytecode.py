"""The packed charm's venv ships compiled bytecode (issue 14 finding 7).

Without it every CLI process and hook byte-compiles boto3/botocore again (~0.7 s a run
where the charm directory cannot keep a __pycache__, and after every deploy or upgrade).
`stage_charm.with_bytecode_step` makes a charmcraft.yaml's python part compile the venv
after the plugin's build, with `unchecked-hash` bytecode so unpacking the charm (new
mtimes) does not invalidate it; it is applied to both charms' charmcraft.yaml here. The
step is run here for real, in bash, on a stand-in venv with the plugin's own `craftctl`
replaced by a stub.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import stage_charm


def _python_part(text: str) -> dict[str, object]:
    project = yaml.safe_load(text)
    parts = [p for p in project["parts"].values() if p.get("plugin") == "python"]
    assert len(parts) == 1
    return parts[0]


@pytest.mark.parametrize("name", ["backup-manager", "mysql-server"])
def test_the_python_part_compiles_its_venv_after_the_default_build(
    name: str, tmp_path: Path
) -> None:
    source = (stage_charm.CHARMS[name].directory / "charmcraft.yaml").read_text()
    project = stage_charm.with_bytecode_step(source)
    assert yaml.safe_load(project)["parts"].keys() == yaml.safe_load(source)["parts"].keys()
    script = _python_part(project).get("override-build")
    assert isinstance(script, str), "the python part has no override-build step"
    install = tmp_path / "install"
    module = install / "venv" / "lib" / "python3" / "site-packages" / "pkg" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text("VALUE = 1\n")
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "craftctl").write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "craftctl.log"}\n')
    (stub / "craftctl").chmod(0o755)
    (stub / "python3").symlink_to(sys.executable)  # the base's interpreter in the build
    env = dict(os.environ, CRAFT_PART_INSTALL=str(install), PATH=f"{stub}:/usr/bin:/bin")

    subprocess.run(["bash", "-e", "-c", script], env=env, check=True, timeout=120)

    assert (tmp_path / "craftctl.log").read_text().split() == ["default"]
    compiled = list((module.parent / "__pycache__").glob("mod.*.pyc"))
    assert len(compiled) == 1
    flags = int.from_bytes(compiled[0].read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked: valid whatever the mtimes


def test_staging_refuses_a_python_part_that_already_overrides_its_build(tmp_path: Path) -> None:
    before = "parts:\n  charm:\n    override-build: craftctl default\n    plugin: python\n"
    after = "parts:\n  charm:\n    plugin: python\n    override-build: craftctl default\n"

    for text in (before, after):
        with pytest.raises(SystemExit, match="override-build"):
            stage_charm.with_bytecode_step(text)
    other = "parts:\n  a:\n    override-build: x\n  charm:\n    plugin: python\n"
    assert "craftctl default" in stage_charm.with_bytecode_step(other)
