"""Restore drill results in the catalog: verification.json beside the backup (contract C4)."""

from __future__ import annotations

import pytest

from database_backup.catalog import BackupNotFoundError, MetadataError

from .factories import backup
from .memstore import MemoryStore
from .test_store import make_catalog, store_backup


def document(
    backup_id: str, result: str = "pass", at: str = "2026-11-22T11:00:00Z"
) -> dict[str, object]:
    return {
        "backup-id": backup_id,
        "job-id": "job-1",
        "unit": "mysql/0",
        "result": result,
        "checked-at": at,
        "duration-seconds": 12.5,
        "tables-checked": 3,
        "tables-compared": 3,
        "tables-skipped": 0,
    }


def test_write_then_read_the_newest_drill_wins() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("b1", 1))

    catalog.write_verification("b1", document("b1", "fail", "2026-11-22T10:00:00Z"))
    catalog.write_verification("b1", document("b1", "pass", "2026-11-22T11:00:00Z"))

    assert catalog.read_verification("b1") == document("b1", "pass", "2026-11-22T11:00:00Z")
    assert catalog.storage.exists(catalog.artefact_key("b1", "verification.json"))


def test_never_drilled_is_none_and_absent_from_verifications() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("b1", 2))
    store_backup(catalog, backup("b2", 1))
    catalog.write_verification("b2", document("b2"))

    assert catalog.read_verification("b1") is None
    assert catalog.verifications() == {"b2": document("b2")}


def test_a_drill_of_an_unknown_backup_is_refused() -> None:
    store = MemoryStore()
    catalog = make_catalog(store)
    catalog.ensure_cluster()

    with pytest.raises(BackupNotFoundError, match="list the backups"):
        catalog.write_verification("nope", document("nope"))
    assert not any(key.endswith("verification.json") for key in store.objects)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backup-id": "other"}, "names another backup"),
        ({"result": "maybe"}, "'pass' or 'fail'"),
        ({"checked-at": "yesterday"}, "checked-at"),
    ],
)
def test_a_bad_document_is_refused_with_the_reason(
    change: dict[str, object], message: str
) -> None:
    store = MemoryStore()
    catalog = make_catalog(store)
    store_backup(catalog, backup("b1", 1))

    with pytest.raises(MetadataError, match=message):
        catalog.write_verification("b1", {**document("b1"), **change})
