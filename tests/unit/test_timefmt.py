"""One timestamp format for files and the wire: RFC 3339 in UTC with a `Z`."""

from __future__ import annotations

import datetime

import pytest

from database_backup.timefmt import format_id_stamp, format_time, parse_time, utc_now

UTC = datetime.timezone.utc
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))


def test_utc_now_is_aware_utc():
    now = utc_now()
    assert now.tzinfo is not None
    assert now.utcoffset() == datetime.timedelta(0)


def test_format_time_is_seconds_in_utc_with_z():
    moment = datetime.datetime(2026, 11, 22, 11, 0, 21, 987654, tzinfo=PLUS_TWO)
    assert format_time(moment) == "2026-11-22T09:00:21Z"


def test_format_time_exact_keeps_the_fraction_when_there_is_one():
    with_fraction = datetime.datetime(2026, 11, 22, 7, 15, 0, 123456, tzinfo=UTC)
    whole = datetime.datetime(2026, 11, 22, 7, 15, tzinfo=UTC)
    assert format_time(with_fraction, exact=True) == "2026-11-22T07:15:00.123456Z"
    assert format_time(whole, exact=True) == "2026-11-22T07:15:00Z"


def test_format_time_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime.datetime(2026, 11, 22, 7, 15))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T09:00:21Z",
        "2026-11-22T09:00:21z",
        "2026-11-22T09:00:21+00:00",
        "2026-11-22T11:00:21+02:00",
    ],
)
def test_parse_time_reads_z_and_offsets_as_utc(text: str):
    moment = parse_time(text)
    assert moment == datetime.datetime(2026, 11, 22, 9, 0, 21, tzinfo=UTC)
    assert moment.tzinfo == UTC


def test_parse_time_keeps_the_fraction():
    moment = parse_time("2026-11-22T07:15:00.123456Z")
    assert moment.microsecond == 123456


def test_parse_round_trips_format():
    moment = datetime.datetime(2026, 11, 22, 7, 15, 0, 5, tzinfo=UTC)
    assert parse_time(format_time(moment, exact=True)) == moment
    assert parse_time(format_time(moment)) == moment.replace(microsecond=0)


@pytest.mark.parametrize("text", ["2026-11-22T09:00:21", "yesterday", ""])
def test_parse_time_refuses_zone_less_or_malformed_text(text: str):
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time(text)


def test_id_stamp_is_compact():
    moment = datetime.datetime(2026, 11, 22, 9, 0, 21, 500, tzinfo=PLUS_TWO)
    assert format_id_stamp(moment) == "20261122T070021Z"
