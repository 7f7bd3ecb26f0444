"""A stop asked for by a signal, raised at once and checked again before irreversible steps.

The engine's commands raise `TerminatedError` from their SIGTERM handler, in whatever code
the main thread runs. Libraries may swallow it: botocore turns any exception raised while a
request is in flight into a retryable `HTTPClientError`, retries, and goes on. So the request
is also recorded here, and the engine calls `raise_if_requested()` just before each step it
cannot take back (swapping a restored datadir in, deleting the data a recovery kept): a
stop asked for before that point is honoured there, even if the first raise was lost.
"""

from __future__ import annotations


class TerminatedError(Exception):
    """SIGTERM arrived: raised in the main thread so the engine cleans up or rolls back."""


_requested: list[str] = []


def request(reason: str) -> TerminatedError:
    """Record a stop (e.g. "stopped by signal SIGTERM"); return the error to raise now."""
    _requested.append(reason)
    return TerminatedError(reason)


def raise_if_requested() -> None:
    """Raise `TerminatedError` if a stop was asked for (a checkpoint before a commit step).

    Reached on the normal path only: had the first raise gone through, the command would be
    unwinding (cleaning up or rolling back) rather than about to commit.
    """
    if _requested:
        raise TerminatedError(_requested[0])


def clear() -> None:
    """Forget any stop (tests, and a process that runs several commands)."""
    _requested.clear()
