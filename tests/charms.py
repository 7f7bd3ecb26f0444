"""Load both charms' entry modules under distinct names (both files are called charm.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_module(name: str, path: Path) -> ModuleType:
    """Import the file `path` as the module `name` (once: later calls return it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def manager_charm_module() -> ModuleType:
    """The backup-manager's `src/charm.py`."""
    return load_module("backup_manager_charm", ROOT / "src" / "charm.py")


def mysql_charm_module() -> ModuleType:
    """The mysql-server's `mysql/src/charm.py`."""
    return load_module("mysql_server_charm", ROOT / "mysql" / "src" / "charm.py")
