"""The one timestamp format for files and the wire: RFC 3339 in UTC with a ``Z``.

``format_time`` writes ``2026-11-22T09:00:21Z`` (``exact=True`` keeps a fraction of a
second, as catalog metadata needs). ``parse_time`` reads that and any RFC 3339 offset
(``+00:00`` as older state files have it), always returning an aware UTC datetime.
``format_id_stamp`` is the compact form used inside ids (``20261122T090021Z``).
Python 3.10 (Ubuntu 22.04) ``fromisoformat`` does not accept ``Z``, hence the rewrite.
"""

from __future__ import annotations

import datetime

UTC = datetime.timezone.utc


def utc_now() -> datetime.datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.datetime.now(UTC)


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC.

    Raises:
        ValueError: ``moment`` is naive (its zone would be a guess).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required (naive times are ambiguous)")
    return moment.astimezone(UTC)


def format_time(moment: datetime.datetime, *, exact: bool = False) -> str:
    """``2026-11-22T09:00:21Z``; with ``exact``, a fraction of a second is kept if present.

    Raises:
        ValueError: ``moment`` is naive.
    """
    text = as_utc(moment).isoformat(timespec="auto" if exact else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime:
    """An aware UTC datetime from RFC 3339 text with ``Z`` or an offset.

    Raises:
        ValueError: the text is not an RFC 3339 time with a zone.
    """
    rewritten = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.datetime.fromisoformat(rewritten)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an RFC 3339 time (give e.g. 2026-11-22T09:00:21Z)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{text!r} has no zone: give an RFC 3339 time such as 2026-11-22T09:00:21Z"
        )
    return moment.astimezone(UTC)


def format_id_stamp(moment: datetime.datetime) -> str:
    """The compact UTC form used inside ids and names: ``20261122T090021Z``.

    Raises:
        ValueError: ``moment`` is naive.
    """
    return as_utc(moment).strftime("%Y%m%dT%H%M%SZ")
