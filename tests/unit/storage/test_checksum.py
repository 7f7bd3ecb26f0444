"""The object checksum: SHA-256 of the parts' SHA-256s, cut as the upload's plan cuts them."""

from __future__ import annotations

import hashlib
import random

import pytest

from database_backup.storage.checksum import PartsChecksum, PartsHasher, compose
from database_backup.storage.parts import MiB, PartPlan

from .slices import checksum_by_slices


@pytest.mark.parametrize("seed", range(12))
def test_any_chunking_gives_the_checksum_of_the_plans_slices(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    plan = PartPlan(base=rng.randint(1, 40), grow_after=rng.randint(1, 4), grow_every=2)
    data = rng.randbytes(rng.randint(1, 3000))
    hasher = PartsHasher(plan)
    offset = 0
    while offset < len(data):
        step = rng.randint(1, 200)
        hasher.update(memoryview(data)[offset : offset + step])
        offset += step

    assert hasher.hexdigest() == checksum_by_slices(data, plan)


def test_a_stream_of_whole_parts_has_no_empty_last_part() -> None:
    hasher = PartsHasher(PartPlan(base=4))
    hasher.update(b"abcdefgh")

    halves = [hashlib.sha256(b"abcd").digest(), hashlib.sha256(b"efgh").digest()]
    assert hasher.hexdigest() == compose(halves)


def test_an_empty_stream_is_one_empty_part() -> None:
    assert PartsHasher(PartPlan(base=4)).hexdigest() == compose([hashlib.sha256(b"").digest()])


def test_hexdigest_does_not_end_the_stream() -> None:
    hasher = PartsHasher(PartPlan(base=4))
    hasher.update(b"abc")
    hasher.hexdigest()
    hasher.update(b"defg")

    assert hasher.hexdigest() == checksum_by_slices(b"abcdefg", PartPlan(base=4))


def test_the_catalog_form_round_trips() -> None:
    value = PartsChecksum("ab" * 32, PartPlan(base=16 * MiB, grow_after=9_000, grow_every=250))

    assert PartsChecksum.from_json(value.to_json()) == value
    assert value.to_json() == {
        "sha256": "ab" * 32,
        "part-size": 16 * MiB,
        "grow-after": 9_000,
        "grow-every": 250,
    }


GOOD = {"sha256": "ab" * 32, "part-size": 5 * MiB, "grow-after": 1, "grow-every": 1}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("ab" * 32, "must be an object"),
        ({**GOOD, "sha256": "AB" * 32}, "lowercase hex"),
        ({k: v for k, v in GOOD.items() if k != "grow-every"}, "positive integers"),
        ({**GOOD, "grow-after": True}, "positive integers"),
        ({**GOOD, "part-size": 1024}, "5 MiB to 5 GiB"),
    ],
)
def test_a_bad_catalog_form_is_refused_with_what_is_wrong(document: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        PartsChecksum.from_json(document)
