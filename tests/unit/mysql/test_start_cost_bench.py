"""bench/start_cost.py: what its trace summary counts."""

from __future__ import annotations

from typing import Any

from bench.start_cost import first, summarise

_EVENTS: list[list[Any]] = [
    ["spawn", "mariadb-admin", 0.10],
    ["spawn", "mariadb", 0.12],
    ["s3-connect", "", 0.30],
    ["spawn", "mbstream", 0.35],
    ["spawn", "mariabackup", 1.40],
    ["s3-connect", "", 1.50],
    ["exit", "", 2.00],
]


def test_the_summary_counts_what_ran_before_the_tool():
    summary = summarise(_EVENTS, "mbstream")

    assert summary == {"s3": 0.30, "tool": 0.35, "spawns_before": 2, "exit": 2.00}


def test_a_tool_that_never_ran_counts_every_spawn_and_has_no_time():
    summary = summarise(_EVENTS, "xbstream")

    assert summary["tool"] is None
    assert summary["spawns_before"] == 4
    assert first(_EVENTS, "spawn", "mariabackup") == 1.40
