"""The manager's catalog reads (`backup_manager.catalogs.Catalogs`) over an in-memory bucket."""

from __future__ import annotations

from backup_manager.catalogs import Catalogs
from backup_manager.locations import Location
from database_backup.catalog import Catalog

from .factories import NOW, backup
from .memstore import MemoryStore
from .test_store import store_backup

MODEL = "6f1c0d2e-model"
LOCATION = Location("s3-a", "bucket-a", "AK", "SK")


def catalogs(store: MemoryStore) -> Catalogs:
    return Catalogs({"s3-a": LOCATION}, MODEL, opener=lambda _location: store, clock=lambda: NOW)


def test_rows_say_when_and_how_each_backup_was_last_drilled() -> None:
    store = MemoryStore()
    catalog = Catalog(store, f"{MODEL}/mysql", clock=lambda: NOW)
    for backup_id, days in (("b1", 3), ("b2", 2), ("b3", 1)):
        store_backup(catalog, backup(backup_id, days))
    drill = {"job-id": "j1", "unit": "mysql/0", "duration-seconds": 3, "tables-checked": 2}
    catalog.write_verification(
        "b1", {**drill, "backup-id": "b1", "result": "pass", "checked-at": "2026-11-22T10:00:00Z"}
    )
    catalog.write_verification(
        "b2",
        {
            **drill,
            "backup-id": "b2",
            "result": "fail",
            "checked-at": "2026-11-22T11:00:00Z",
            "reason": "drill failed: shop.orders: 2500 rows recorded, 2499 found",
        },
    )

    rows = {row["backup-id"]: row for row in catalogs(store).rows(["mysql"])}

    assert rows["b1"]["verified"] == "2026-11-22T10:00:00Z pass"
    assert rows["b2"]["verified"] == "2026-11-22T11:00:00Z fail"
    assert rows["b3"]["verified"] == ""
    assert rows["b2"]["verification"]["reason"].startswith("drill failed: shop.orders")
    assert rows["b2"]["verification"]["result"] == "fail"
    assert "verification" not in rows["b3"]
