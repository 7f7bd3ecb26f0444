"""Part-size planning: S3 allows 10,000 parts of 5 MiB..5 GiB, objects up to 5 TiB."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from database_backup.storage.parts import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    GiB,
    MiB,
    TiB,
    choose_part_size,
    plan_parts,
)


def parts_needed(plan, size: int) -> int:
    done, n = 0, 0
    while done < size:
        n += 1
        done += plan.size(n)
    return n


def test_five_tib_fits_in_fewer_than_10000_parts():
    plan = plan_parts(5 * TiB)

    assert parts_needed(plan, 5 * TiB) < MAX_PARTS
    assert plan.base % MiB == 0
    assert plan.base <= MAX_PART_SIZE


def test_unknown_size_starts_small_and_still_reaches_five_tib():
    plan = plan_parts(None)

    assert plan.base == DEFAULT_PART_SIZE == 16 * MiB
    assert plan.size(1000) == 16 * MiB
    assert plan.size(1001) == 32 * MiB
    assert plan.capacity() >= 5 * TiB
    assert parts_needed(plan, 5 * TiB) < MAX_PARTS


def test_small_streams_use_the_minimum_part_size():
    assert choose_part_size(40 * MiB) == MIN_PART_SIZE
    assert choose_part_size(1) == MIN_PART_SIZE
    assert choose_part_size(None) == DEFAULT_PART_SIZE
    assert choose_part_size(0) == DEFAULT_PART_SIZE


def test_a_low_hint_still_leaves_headroom():
    hint = 100 * GiB
    plan = plan_parts(hint)

    assert plan.capacity() >= 1.5 * hint
    assert plan.size(9000) == plan.base
    assert plan.size(9001) == 2 * plan.base


def test_a_forced_part_size_is_validated():
    assert plan_parts(part_size=5 * MiB).base == 5 * MiB
    with pytest.raises(ValueError, match="between 5 MiB and 5 GiB"):
        plan_parts(part_size=MiB)
    with pytest.raises(ValueError, match="between 5 MiB and 5 GiB"):
        plan_parts(part_size=6 * GiB)


@given(st.integers(min_value=1, max_value=5 * TiB))
def test_any_hint_up_to_five_tib_fits(hint: int):
    plan = plan_parts(hint)

    assert MIN_PART_SIZE <= plan.base <= MAX_PART_SIZE
    assert plan.base * 9000 >= hint  # the hinted size fits before any growth
    assert all(MIN_PART_SIZE <= plan.size(n) <= MAX_PART_SIZE for n in (1, 9000, 9001, 10000))
