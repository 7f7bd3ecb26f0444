"""A stop asked for by a signal, raised at once and checked again before irreversible steps.

The engine's commands raise `TerminatedError` from their SIGTERM handler, in whatever code
the main thread runs. Libraries may swallow it: botocore turns any exception raised while a
request is in flight into a retryable `HTTPClientError`, retries, and goes on. So the request
is also recorded here, and the engine calls `raise_if_requested()` just before each step it
cannot take back (swapping a restored datadir in, deleting the data a recovery kept): a
stop asked for before that point is honoured there, even if the first raise was lost.

Two steps must not be cut by a SIGTERM: a command that controls the database server (cut
half-way, it leaves a server starting or stopping behind the engine's back) runs in
`deferring()`, which hands the signal on once the command has ended; putting the previous
data back runs in `holding()`, which only records it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers


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


@contextlib.contextmanager
def holding() -> Generator[None, None, None]:
    """Record a SIGTERM that arrives during the block instead of raising it (clean-up must finish).

    Only the main thread may change signal handlers; elsewhere this does nothing.
    """
    with _sigterm_handler(_record_only):
        yield


@contextlib.contextmanager
def deferring() -> Generator[None, None, None]:
    """Hold a SIGTERM that arrives during the block; deliver it to the usual handler after.

    The signal is delayed, never lost: once the block ends (normally or by an exception) the
    handler in place before the block gets it, so a command raises `TerminatedError` then,
    `holding()` records it, and a process with the default handler ends.
    Only the main thread may change signal handlers; elsewhere this does nothing.
    """
    held: list[int] = []
    try:
        with _sigterm_handler(lambda signum, _frame: held.append(signum)):
            yield
    finally:
        if held:
            signal.raise_signal(signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_handler(handler: _Handler) -> Generator[None, None, None]:
    """`handler` for SIGTERM during the block, then the previous one (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signal handlers cannot change here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, _restorable(previous))


def _restorable(handler: _Handler | None) -> _Handler:
    """The handler to put back (None: one not set from Python, taken as the default)."""
    return signal.SIG_DFL if handler is None else handler


def _record_only(signum: int, _frame: FrameType | None) -> None:
    request(f"stopped by signal {signal.Signals(signum).name}")
