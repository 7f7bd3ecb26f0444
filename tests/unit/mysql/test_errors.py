"""The engine's errors share one root; the ones that may change data share one base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import database_backup.mysql as engine
from database_backup.mysql import DataChangeError, EngineError


def engine_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the engine package, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(engine.__path__, prefix=f"{engine.__name__}."):
        module = importlib.import_module(info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[name] = value
    return found


def test_every_engine_error_has_the_one_root() -> None:
    errors = engine_exceptions()
    assert len(errors) >= 14  # the walk found the engine's errors, not nothing
    outside = sorted(name for name, cls in errors.items() if not issubclass(cls, EngineError))
    assert outside == []


def test_the_data_changing_errors_are_under_data_change_error() -> None:
    errors = engine_exceptions()
    data_changing = {"RestoreError", "LogicalRestoreError", "RecoveryError"}
    assert {name for name, cls in errors.items() if issubclass(cls, DataChangeError)} == (
        data_changing | {"DataChangeError"}
    )
    assert issubclass(DataChangeError, EngineError)
    assert not engine.RestoreError("x").data_changed
    assert engine.RestoreError("x", data_changed=True).data_changed


def test_the_package_exports_the_roots() -> None:
    assert {"EngineError", "DataChangeError"} <= set(engine.__all__)
