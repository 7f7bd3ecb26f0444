"""Run the `database_backup` v0 interface tests against both charms of this repository."""

from __future__ import annotations

from interface_tester import InterfaceTester


def test_database_backup_interface(interface_tester: InterfaceTester) -> None:
    # `run` raises InterfaceTestsFailed listing each failing interface test, and NoTestsRun
    # when no test applies to the charm's role.
    interface_tester.run()
