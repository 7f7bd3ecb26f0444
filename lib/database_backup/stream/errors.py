"""Errors raised by the stream stages."""

from __future__ import annotations


class IntegrityError(Exception):
    """A stored stream is truncated, tampered with, corrupt, or was encrypted with another key.

    The message says what was detected and never contains key material or data.
    """
