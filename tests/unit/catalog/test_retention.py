"""Retention selection (pure): counts, age, holds, parents, protected and incomplete backups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from database_backup.catalog import (
    BackupMetadata,
    IncompleteBackup,
    RetentionPolicy,
    select_for_deletion,
)

from .factories import NOW, backup, incomplete

DAY = timedelta(days=1)
Entry = BackupMetadata | IncompleteBackup


def daily(count: int, prefix: str = "b") -> list[Entry]:
    """``count`` full backups, one a day; ``b0`` is the oldest, ``b{count-1}`` 1 day old."""
    return [backup(f"{prefix}{i}", count - i) for i in range(count)]


def selected(
    entries: list[Entry],
    policy: RetentionPolicy,
    *,
    holds: dict[str, datetime] | None = None,
    protected: tuple[str, ...] = (),
    now: datetime = NOW,
) -> list[str]:
    decisions = select_for_deletion(entries, holds or {}, policy, now, protected)
    return [decision.backup_id for decision in decisions]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(RetentionPolicy(), [], id="no-limits-keeps-all"),
        pytest.param(RetentionPolicy(max_count=3), ["b0", "b1"], id="max-count"),
        pytest.param(RetentionPolicy(max_count=5), [], id="max-count-equal"),
        pytest.param(
            RetentionPolicy(max_count=1, min_count=0), ["b0", "b1", "b2", "b3"], id="max-1"
        ),
        pytest.param(RetentionPolicy(min_count=4, max_count=2), ["b0"], id="min-count-wins"),
        pytest.param(RetentionPolicy(max_age=2.5 * DAY), ["b0", "b1", "b2"], id="max-age"),
        pytest.param(RetentionPolicy(max_age=10 * DAY), [], id="max-age-none-old"),
        pytest.param(
            RetentionPolicy(max_age=DAY / 2), ["b0", "b1", "b2", "b3"], id="age-keeps-min-1"
        ),
        pytest.param(
            RetentionPolicy(min_count=0, max_age=DAY / 2),
            ["b0", "b1", "b2", "b3", "b4"],
            id="age-min-0-deletes-all",
        ),
        pytest.param(RetentionPolicy(min_count=3, max_age=DAY / 2), ["b0", "b1"], id="age-min-3"),
        pytest.param(
            RetentionPolicy(max_count=4, max_age=4.5 * DAY), ["b0"], id="count-and-age-count"
        ),
        pytest.param(
            RetentionPolicy(max_count=4, max_age=2.5 * DAY),
            ["b0", "b1", "b2"],
            id="count-and-age-age",
        ),
    ],
)
def test_count_and_age_table(policy: RetentionPolicy, expected: list[str]) -> None:
    assert selected(daily(5), policy) == expected


def test_decisions_are_oldest_first_with_reasons() -> None:
    entries = daily(6)
    entries.reverse()  # input order does not matter

    decisions = select_for_deletion(
        entries, {}, RetentionPolicy(max_count=4, max_age=5.5 * DAY), NOW
    )

    assert [(d.backup_id, d.reason) for d in decisions] == [
        ("b0", "beyond the 4 newest backups (max-count)"),
        ("b1", "beyond the 4 newest backups (max-count)"),
    ]
    decisions = select_for_deletion(entries, {}, RetentionPolicy(max_age=4.5 * DAY), NOW)
    assert [d.backup_id for d in decisions] == ["b0", "b1"]
    assert all("(max-age)" in d.reason for d in decisions)


# holds (preserve until a date) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hold_until", "expected"),
    [
        pytest.param(NOW + DAY, ["b1", "b2"], id="held-in-future"),
        pytest.param(NOW + timedelta(seconds=1), ["b1", "b2"], id="held-one-more-second"),
        pytest.param(NOW, ["b0", "b1", "b2"], id="hold-ends-now"),
        pytest.param(NOW - DAY, ["b0", "b1", "b2"], id="hold-expired"),
    ],
)
def test_held_backup_is_never_selected(hold_until: datetime, expected: list[str]) -> None:
    assert selected(daily(5), RetentionPolicy(max_count=2), holds={"b0": hold_until}) == expected


def test_hold_on_a_backup_within_the_newest_does_not_cost_a_slot() -> None:
    # b4 (newest) held: the count still keeps b3 and b4; older ones go
    result = selected(daily(5), RetentionPolicy(max_count=2), holds={"b4": NOW + DAY})

    assert result == ["b0", "b1", "b2"]


def test_purging_resumes_after_the_hold_expires_while_backups_continue() -> None:
    """New backups keep coming, the held one stays, then goes when the hold ends."""
    policy = RetentionPolicy(max_count=3)
    hold_until = NOW + 5 * DAY
    catalog: list[Entry] = []
    history: list[tuple[int, list[str]]] = []
    for day in range(10):
        now = NOW + day * DAY
        catalog.append(backup(f"d{day}", -day))  # taken at `now`
        holds = {"d0": hold_until}
        doomed = set(selected(catalog, policy, holds=holds, now=now))
        catalog = [entry for entry in catalog if entry.backup_id not in doomed]
        history.append((day, [entry.backup_id for entry in catalog]))

    kept = dict(history)
    for day in range(6):  # the hold ends at day 5 exactly: not in force on day 5
        assert "d0" in kept[day] or day == 5
    assert kept[4] == ["d0", "d2", "d3", "d4"]  # 3 newest + the held one
    assert kept[5] == ["d3", "d4", "d5"]  # hold over: purged with the rest
    assert kept[9] == ["d7", "d8", "d9"]


def test_cancelled_hold_is_simply_absent() -> None:
    # Catalog.holds() omits cancelled holds (preserve-until null)
    assert selected(daily(3), RetentionPolicy(max_count=1), holds={}) == ["b0", "b1"]


# incremental chains -----------------------------------------------------------------


def chain() -> list[Entry]:
    return [
        backup("f0", 9),
        backup("f1", 8),
        backup("i1", 7, kind="incremental", parent="f1"),
        backup("i2", 6, kind="incremental", parent="i1"),
        backup("f3", 5),
        backup("i4", 4, kind="incremental", parent="f3"),
    ]


@pytest.mark.parametrize(
    ("policy", "holds", "protected", "expected"),
    [
        pytest.param(
            RetentionPolicy(max_count=2), {}, (), ["f0", "f1", "i1", "i2"], id="chain-goes"
        ),
        pytest.param(
            RetentionPolicy(max_count=1), {}, (), ["f0", "f1", "i1", "i2"], id="parent-of-kept"
        ),
        pytest.param(
            RetentionPolicy(max_count=1),
            {"i2": NOW + DAY},
            (),
            ["f0"],
            id="held-child-keeps-chain",
        ),
        pytest.param(
            RetentionPolicy(max_count=1), {"i1": NOW + DAY}, (), ["f0", "i2"], id="held-middle"
        ),
        pytest.param(RetentionPolicy(max_count=1), {}, ("i2",), ["f0"], id="protected-child"),
        pytest.param(
            RetentionPolicy(max_count=1),
            {"i2": NOW - DAY},
            (),
            ["f0", "f1", "i1", "i2"],
            id="expired-hold-releases-chain",
        ),
        pytest.param(
            RetentionPolicy(min_count=0, max_age=DAY),
            {},
            (),
            ["f0", "f1", "i1", "i2", "f3", "i4"],
            id="all-old",
        ),
    ],
)
def test_parents_of_kept_incrementals_table(
    policy: RetentionPolicy,
    holds: dict[str, datetime],
    protected: tuple[str, ...],
    expected: list[str],
) -> None:
    assert selected(chain(), policy, holds=holds, protected=protected) == expected


def test_long_chain_is_kept_transitively() -> None:
    entries: list[Entry] = [backup("full", 30)]
    for i in range(20):
        entries.append(backup(f"inc{i}", 29 - i, kind="incremental", parent=entries[-1].backup_id))

    assert selected(entries, RetentionPolicy(max_count=1)) == []
    assert selected(entries, RetentionPolicy(max_count=1), now=NOW + 100 * DAY) == []


def test_parent_cycle_in_corrupt_metadata_terminates() -> None:
    entries: list[Entry] = [
        backup("a", 3, kind="incremental", parent="b"),
        backup("b", 2, kind="incremental", parent="a"),
        backup("c", 1),
    ]

    assert selected(entries, RetentionPolicy(max_count=1)) == ["a", "b"]
    assert selected(entries, RetentionPolicy(max_count=1), protected=("a",)) == []


# protected ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protected", "expected"),
    [
        pytest.param((), ["b0", "b1", "b2"], id="none"),
        pytest.param(("b1",), ["b0", "b2"], id="one"),
        pytest.param(("b0", "b2", "unknown"), ["b1"], id="several-and-unknown"),
    ],
)
def test_protected_ids_table(protected: tuple[str, ...], expected: list[str]) -> None:
    assert selected(daily(4), RetentionPolicy(max_count=1), protected=protected) == expected


# incomplete backups ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "policy", "protected", "expected"),
    [
        pytest.param(
            [backup("f0", 3), backup("f1", 2), incomplete("x", 0.01)],
            RetentionPolicy(min_count=2, max_count=2),
            (),
            [],
            id="in-progress-left-alone-and-not-counted",
        ),
        pytest.param(
            [backup("f0", 3), backup("f1", 2), incomplete("x", 0.01)],
            RetentionPolicy(max_count=1),
            (),
            ["f0"],
            id="in-progress-does-not-take-a-slot",
        ),
        pytest.param(
            [incomplete("x", 5), backup("f0", 3), backup("f1", 2)],
            RetentionPolicy(),
            (),
            ["x"],
            id="abandoned-deleted",
        ),
        pytest.param(
            [incomplete("x", 5), backup("f0", 3)],
            RetentionPolicy(incomplete_grace=10 * DAY),
            (),
            [],
            id="custom-grace",
        ),
        pytest.param(
            [incomplete("x", 5), backup("f0", 3)], RetentionPolicy(), ("x",), [], id="protected"
        ),
        pytest.param(
            [incomplete("x", 5)], RetentionPolicy(min_count=3), (), ["x"], id="min-count-ignores"
        ),
        pytest.param(
            [backup("f0", 4), backup("bad", 3, status="failed"), backup("f1", 1)],
            RetentionPolicy(max_count=2),
            (),
            ["bad"],
            id="non-complete-status-is-incomplete",
        ),
        pytest.param(
            [backup("f0", 9), incomplete("x", 8), incomplete("y", 0.5), backup("f1", 1)],
            RetentionPolicy(max_count=1),
            (),
            ["f0", "x"],
            id="mixed-oldest-first",
        ),
    ],
)
def test_incomplete_backups_table(
    entries: list[Entry], policy: RetentionPolicy, protected: tuple[str, ...], expected: list[str]
) -> None:
    assert selected(entries, policy, protected=protected) == expected


def test_abandoned_incomplete_backup_reason_says_so() -> None:
    decisions = select_for_deletion([incomplete("x", 2)], {}, RetentionPolicy(), NOW)

    assert len(decisions) == 1
    assert decisions[0].reason.startswith("incomplete")


# validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_count": -1},
        {"max_count": 0},
        {"max_age": timedelta(0)},
        {"max_age": -DAY},
        {"incomplete_grace": -DAY},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetentionPolicy(**kwargs)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        select_for_deletion(daily(2), {}, RetentionPolicy(), NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone"):
        select_for_deletion(daily(2), {"b0": NOW.replace(tzinfo=None)}, RetentionPolicy(), NOW)
