"""The drill's verdict: the interface's `verification` object and the stored document."""

from __future__ import annotations

from database_backup.mysql.drill.verification import MAX_REASON, Verification, short_reason


def test_a_pass_has_no_reason_and_rounds_its_duration():
    verdict = Verification("pass", "2026-11-29T04:00:00Z", 12.34567, 7, 5, 2)

    assert verdict.to_dict() == {
        "result": "pass",
        "checked-at": "2026-11-29T04:00:00Z",
        "duration-seconds": 12.346,
        "tables-checked": 7,
        "tables-compared": 5,
        "tables-skipped": 2,
    }


def test_a_fail_carries_its_reason_on_one_line_and_cut_to_the_interface_bound():
    reason = "drill failed: " + "shop.orders: 2500 rows recorded, 2499 found\n" * 40

    verdict = Verification("fail", "2026-11-29T04:00:00Z", 1.0, reason=reason)
    text = verdict.to_dict()["reason"]

    assert isinstance(text, str)
    assert len(text) == MAX_REASON
    assert "\n" not in text
    assert text.startswith("drill failed: shop.orders: 2500 rows recorded, 2499 found shop")
    assert text.endswith("...")
    assert short_reason("short") == "short"


def test_a_point_in_time_drill_names_its_target():
    verdict = Verification(
        "pass", "2026-11-29T04:00:00Z", 3.0, point_in_time="2026-11-29T03:00:00Z"
    )

    assert verdict.to_dict()["point-in-time"] == "2026-11-29T03:00:00Z"


def test_the_stored_document_adds_the_backup_the_job_and_the_unit():
    verdict = Verification("fail", "2026-11-29T04:00:00Z", 2.0, reason="drill failed: x")

    document = verdict.document("20261129T030000Z-ab12", job_id="job-7", unit=None)

    assert document["backup-id"] == "20261129T030000Z-ab12"
    assert document["job-id"] == "job-7"
    assert document["unit"] is None
    assert document["result"] == "fail"
    assert document["reason"] == "drill failed: x"
