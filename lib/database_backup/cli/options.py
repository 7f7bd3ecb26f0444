"""Argument types shared by the commands' parsers."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from database_backup.mysql.pitr.plan import parse_target


def positive(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def budget(text: str) -> int:
    """Whole seconds of a time budget; 0 turns the bounded work off."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"give 0 (do not measure) or more seconds as a whole number, not {text[:40]!r}"
        )
    return value


def level(text: str) -> int:
    """A zstd compression level."""
    value = int(text)
    if not 1 <= value <= 19:
        raise argparse.ArgumentTypeError("zstd levels go from 1 to 19")
    return value


def names(text: str) -> list[str]:
    """A comma-separated list of names (at least one)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give at least one name (comma-separated)")
    return parts


def target(text: str) -> str:
    """A point-in-time target: `latest` or an ISO 8601 time."""
    try:
        parse_target(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "use 'latest' or an ISO 8601 time like 2026-11-22T07:15:00Z"
        ) from None
    return text


#: makes one command's parser (its name, its help), with the options every command takes
NewCommand = Callable[[str, str], argparse.ArgumentParser]
