"""The spec directory is what pytest-interface-tester expects, and names our two charms."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from interface_tester.collector import gather_test_spec_for_version

from .spec import CHARMS, INTERFACE, REPO_ROOT, SPEC_DIR


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_interface_yaml_names_our_charms_and_their_test_setup() -> None:
    spec = yaml.safe_load((SPEC_DIR / "interface.yaml").read_text())
    assert (spec["name"], spec["version"], spec["status"]) == (INTERFACE, 0, "draft")
    assert spec["maintainer"]
    roles = {"providers": "mysql-server", "requirers": "backup-manager"}
    for role, charm_name in roles.items():
        (entry,) = spec[role]
        assert entry["name"] == charm_name
        assert entry["url"]
        setup = entry["test_setup"]
        assert setup["identifier"] == "interface_tester"
        assert (REPO_ROOT / setup["location"]).is_file()
        charm_root = REPO_ROOT / setup["charm_root"]
        assert charm_root.resolve() == CHARMS[charm_name].root.resolve()
        metadata = yaml.safe_load((charm_root / "metadata.yaml").read_text())
        assert metadata["name"] == charm_name


def test_the_tester_collects_every_test_and_both_schemas() -> None:
    collected = gather_test_spec_for_version(SPEC_DIR, interface_name=INTERFACE, version=0)
    for role in ("provider", "requirer"):
        names = {test.__name__ for test in collected[role]["tests"]}
        # Every module-level function is run as a test: no helper may sneak in.
        expected = defined_functions(SPEC_DIR / "interface_tests" / f"test_{role}.py")
        assert names == expected
        assert all(name.startswith("test_") for name in names)
        assert len(names) >= 4
        assert collected[role]["schema"] is not None
    assert [c.name for c in collected["provider"]["charms"]] == ["mysql-server"]
    assert [c.name for c in collected["requirer"]["charms"]] == ["backup-manager"]
