"""The drill's disk pre-check: the estimate per backup kind and the refusal with figures."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from database_backup.mysql.drill.errors import DrillRefusedError
from database_backup.mysql.drill.space import (
    FRESH_DATADIR,
    GIB,
    MIB,
    SpaceCheck,
    check_space,
    default_min_free,
    logical_need,
    physical_need,
)
from tests.unit.catalog.factories import backup


def test_a_chain_needs_every_link_unpacked_with_the_margin():
    full = dataclasses.replace(backup("full-1", 3), raw_size=1000 * MIB)
    inc = dataclasses.replace(
        backup("inc-1", 2, kind="incremental", parent="full-1"), raw_size=100 * MIB
    )

    assert physical_need([full]) == int(1000 * MIB * 1.10)
    assert physical_need([full, inc]) == int(1100 * MIB * 1.10)


def test_an_unknown_raw_size_is_the_stored_size_times_the_factor():
    meta = dataclasses.replace(backup("full-1", 1), raw_size=None, stored_size=10 * MIB)

    assert physical_need([meta]) == int(40 * MIB * 1.10)


def test_a_logical_drill_needs_the_download_the_loaded_data_and_a_fresh_datadir():
    meta = dataclasses.replace(
        backup("dump-1", 1, kind="logical"), stored_size=10 * MIB, raw_size=50 * MIB
    )

    assert logical_need(meta) == 10 * MIB + 100 * MIB + FRESH_DATADIR


@pytest.mark.parametrize(
    ("total", "kept"), [(4 * GIB, GIB), (100 * GIB, 10 * GIB), (10 * GIB, GIB)]
)
def test_the_default_room_kept_is_a_tenth_of_the_filesystem_and_at_least_1_gib(total, kept):
    assert default_min_free(total) == kept


def test_a_drill_that_would_eat_into_the_kept_room_is_refused_with_figures(tmp_path: Path):
    free = shutil.disk_usage(tmp_path).free

    with pytest.raises(DrillRefusedError) as caught:
        check_space(tmp_path, 100 * MIB, free - 50 * MIB, tmp_path)

    message = str(caught.value)
    assert message.startswith("drill refused: the drill needs about 100 MiB in ")
    assert "the live database's filesystem (--min-free-bytes)" in message
    assert "point the drill directory (--scratch-root) to another disk" in message


def test_a_drill_that_fits_is_allowed_and_reports_its_figures(tmp_path: Path):
    check = check_space(tmp_path, MIB, 0, tmp_path)

    assert check.ok
    assert check.needed == MIB
    assert check.left == check.free - MIB
    assert check.shares_live


def test_the_refusal_says_when_the_scratch_disk_is_not_the_live_one():
    check = SpaceCheck(Path("/srv/drills"), 3 * GIB, 2 * GIB, 8 * GIB, GIB, shares_live=False)

    assert not check.ok
    assert "kept free on that filesystem" in check.refusal()
    assert "would leave 0 MiB" in check.refusal()
