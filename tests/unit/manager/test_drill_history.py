"""Drills in the job history: a record says which backup it verified (`drill-of`)."""

from __future__ import annotations

import json

from backup_manager import history


def test_a_drill_record_keeps_the_backup_it_verified():
    stored = [
        {
            "job-id": "backup-20261129T040000Z-0001",
            "type": "drill",
            "kind": "drill",
            "drill-of": "20261129T020000Z-0007",
            "status": "error",
            "message": "drill failed: shop.orders: 2500 rows recorded, 2499 found",
        }
    ]
    text = json.dumps(stored, sort_keys=True, separators=(",", ":"))

    records = history.load(text)

    assert records[0].drill_of == "20261129T020000Z-0007"
    assert "drill-of" not in records[0].extra
    assert history.dump(records) == text
