"""Load pieces of the interface spec (`interfaces/database_backup/v0/`) for the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

import ops
import yaml

from tests.charms import load_module

REPO_ROOT = Path(__file__).resolve().parents[2]
INTERFACE = "database_backup"
SPEC_DIR = REPO_ROOT / "interfaces" / INTERFACE / "v0"
DRAFT_VECTORS = REPO_ROOT / "tests" / "unit" / "interface" / "vectors"


def load_schema_module() -> ModuleType:
    """Import the spec's `schema.py` from the working tree under a unique module name."""
    return load_module("database_backup_v0_interface_schema", SPEC_DIR / "schema.py")


@dataclasses.dataclass(frozen=True)
class CharmUnderTest:
    """Where a charm of this repository lives and what its tests need."""

    root: Path
    class_name: str
    peer_endpoint: str

    def charm_type(self) -> type[ops.CharmBase]:
        """Import the charm class from `<root>/src/charm.py` under a unique module name.

        Both charms live in a module called `charm`; loading by path keeps them apart.
        """
        # kept in sys.modules: Scenario finds the charm's files through it
        module = load_module(
            f"interface_tests_{self.root.name}_charm", self.root / "src" / "charm.py"
        )
        charm_type = getattr(module, self.class_name)
        if not (isinstance(charm_type, type) and issubclass(charm_type, ops.CharmBase)):
            raise TypeError(f"{self.class_name} is not a charm class")
        return charm_type

    def yaml_file(self, name: str) -> dict[str, object]:
        """One of the charm's YAML files (empty when the file is empty or missing)."""
        path = self.root / name
        return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


CHARMS = {
    "backup-manager": CharmUnderTest(REPO_ROOT, "BackupManagerCharm", "manager-peers"),
    "mysql-server": CharmUnderTest(REPO_ROOT / "mysql", "MySQLServerCharm", "mysql-peers"),
}
