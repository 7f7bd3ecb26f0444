"""The `database_backup` v0 interface tests (provider side) against this charm."""

from __future__ import annotations

from interface_tester import InterfaceTester


def test_database_backup_interface(interface_tester: InterfaceTester) -> None:
    interface_tester.run()
