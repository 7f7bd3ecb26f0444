"""backup.json documents: round trip, validation, forward compatibility, backup ids."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from database_backup.catalog import BackupMetadata, MetadataError, new_backup_id
from database_backup.storage.checksum import PartsChecksum, WholeChecksum
from database_backup.storage.parts import PartPlan

from .factories import NOW, backup


def document() -> dict[str, Any]:
    return backup("20261122T071500Z-3fa9", 1).to_dict()


def test_round_trip_through_json_keeps_every_field() -> None:
    meta = replace(
        backup("b1", 1, kind="incremental", parent="b0"),
        job_id="job-7",
        description="before upgrade",
        binlog_file="bin.000003",
        binlog_position=1234,
        gtid_set="0-1-42",
        from_lsn=100,
        to_lsn=200,
        databases=["shop"],
        tables=["shop.orders"],
    )

    text = json.dumps(meta.to_dict())
    again = BackupMetadata.from_dict(json.loads(text))

    assert again == meta


def test_document_uses_kebab_case_keys_format_version_and_utc_times() -> None:
    doc = document()

    assert doc["format-version"] == 1
    assert {"backup-id", "parent-id", "stored-size", "raw-size", "finished-at"} <= doc.keys()
    assert not [key for key in doc if "_" in key]
    assert doc["finished-at"].endswith("Z")


def test_times_in_other_zones_are_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    meta = replace(backup("b", 1), started_at=datetime(2026, 1, 1, 14, 0, tzinfo=plus_two))

    assert meta.started_at == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert meta.to_dict()["started-at"] == "2026-01-01T12:00:00Z"


def test_unknown_keys_are_preserved() -> None:
    doc = document() | {"future-field": {"x": 1}, "another": [1, 2]}

    meta = BackupMetadata.from_dict(doc)

    assert meta.extra == {"future-field": {"x": 1}, "another": [1, 2]}
    assert meta.to_dict() == doc


def test_optional_fields_may_be_absent() -> None:
    doc = document()
    for key in ("parent-id", "job-id", "raw-size", "gtid-set", "databases", "tables"):
        del doc[key]

    meta = BackupMetadata.from_dict(doc)

    assert meta.parent_id is None
    assert meta.raw_size is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format-version": 3}, "newer"),
        ({"format-version": None}, "format-version"),
        ({"kind": "differential"}, "kind"),
        ({"compression": "gzip"}, "compression"),
        ({"sha256": "abc"}, "sha256"),
        ({"stored-size": -1}, "stored-size"),
        ({"stored-size": "12"}, "stored-size"),
        ({"encrypted": "yes"}, "encrypted"),
        ({"artefacts": []}, "artefacts"),
        ({"artefacts": ["../escape"]}, "artefacts"),
        ({"backup-id": "a/b"}, "backup id"),
        ({"finished-at": "yesterday"}, "finished-at"),
        ({"finished-at": "2026-11-22T10:00:00"}, "timezone"),
        ({"kind": "incremental", "parent-id": None}, "parent"),
        ({"databases": "shop"}, "databases"),
    ],
)
def test_invalid_documents_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        BackupMetadata.from_dict(document() | change)


@pytest.mark.parametrize("missing", ["backup-id", "started-at", "flavour"])
def test_missing_required_keys_are_named(missing: str) -> None:
    doc = document()
    del doc[missing]

    with pytest.raises(MetadataError, match=missing):
        BackupMetadata.from_dict(doc)


def test_non_object_documents_are_refused() -> None:
    with pytest.raises(MetadataError, match="JSON object"):
        BackupMetadata.from_dict([1, 2])


def test_new_backup_ids_are_sortable_and_unique() -> None:
    ids = [new_backup_id(NOW + timedelta(seconds=s)) for s in (0, 0, 1, 3600)]

    assert all(re.fullmatch(r"20261122T\d{6}Z-[0-9a-f]{4}", backup_id) for backup_id in ids)
    assert ids[0].startswith("20261122T120000Z-")
    assert ids[0] != ids[1]
    assert sorted(ids[1:]) == ids[1:]


def test_new_backup_id_uses_utc_and_refuses_naive_times() -> None:
    plus_two = timezone(timedelta(hours=2))

    assert new_backup_id(datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)).startswith(
        "20260101T000000Z-"
    )
    with pytest.raises(ValueError, match="timezone"):
        new_backup_id(datetime(2026, 1, 1))


def test_key_fingerprint_round_trips_and_old_documents_without_it_still_load() -> None:
    meta = replace(backup("b1", 1), encrypted=True, key_fingerprint="0123456789abcdef")

    again = BackupMetadata.from_dict(json.loads(json.dumps(meta.to_dict())))
    old = document() | {"encrypted": True}
    del old["key-fingerprint"]

    assert again.key_fingerprint == "0123456789abcdef"
    assert meta.to_dict()["key-fingerprint"] == "0123456789abcdef"
    assert BackupMetadata.from_dict(old).key_fingerprint is None


@pytest.mark.parametrize(
    ("encrypted", "value"), [(True, "KEY"), (True, "0123"), (False, "0123456789abcdef"), (True, 7)]
)
def test_a_bad_key_fingerprint_is_refused(encrypted: bool, value: object) -> None:
    doc = document() | {"encrypted": encrypted, "key-fingerprint": value}

    with pytest.raises(MetadataError, match="key-fingerprint"):
        BackupMetadata.from_dict(doc)


PARTS = {"sha256": "cd" * 32, "part-size": 16 << 20, "grow-after": 1000, "grow-every": 1000}


def parts_document() -> dict[str, Any]:
    doc = document()
    del doc["sha256"]
    return {**doc, "parts-sha256": PARTS}


def test_a_checksum_of_parts_is_written_as_format_2_and_read_back() -> None:
    meta = BackupMetadata.from_dict(parts_document())
    doc = meta.to_dict()

    assert doc["format-version"] == 2
    assert doc["parts-sha256"] == PARTS
    assert "sha256" not in doc
    assert BackupMetadata.from_dict(json.loads(json.dumps(doc))) == meta
    assert meta.checksum == PartsChecksum("cd" * 32, PartPlan(16 << 20, 1000, 1000))


def test_a_whole_artefact_sha256_stays_format_1() -> None:
    meta = BackupMetadata.from_dict(document())

    assert meta.to_dict()["format-version"] == 1
    assert "parts-sha256" not in meta.to_dict()
    assert meta.checksum == WholeChecksum(meta.to_dict()["sha256"])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (lambda: {k: v for k, v in document().items() if k != "sha256"}, "exactly one"),
        (lambda: {**parts_document(), "sha256": "ab" * 32}, "exactly one"),
        (lambda: {**parts_document(), "parts-sha256": {**PARTS, "sha256": "x"}}, "64 lowercase"),
        (lambda: {**parts_document(), "parts-sha256": {**PARTS, "part-size": 0}}, "positive"),
        (lambda: {**parts_document(), "artefacts": ["a.zst", "b.zst"]}, "one artefact, not 2"),
    ],
)
def test_a_bad_checksum_is_refused_with_what_is_wrong(doc: Any, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        BackupMetadata.from_dict(doc())
