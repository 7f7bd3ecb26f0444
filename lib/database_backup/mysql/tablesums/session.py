"""One client session kept open across statements, each with a deadline.

A consistent snapshot (``START TRANSACTION WITH CONSISTENT SNAPSHOT``) lives in one
connection, and the engine talks to the server only through the command-line client
(no driver): so the client runs as a child with its stdin open, each statement is
followed by ``SELECT '<marker>'`` and its output read up to that marker line. The client
runs with ``--force`` so a failing statement (a table dropped meanwhile) reports its
error on stderr and the session goes on. The password stays in the 0600 defaults file.
Values are read escaped (no ``--raw``): a statement's text over several lines in
``SHOW BINLOG EVENTS`` stays one row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import selectors
import subprocess
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from ..connection import ConnectionSpec, QueryError, run_query

logger = logging.getLogger(__name__)

#: the most output one statement may produce before the session gives up on it
MAX_OUTPUT = 32 * 2**20
_READ = 2**16


class SessionTimeoutError(QueryError):
    """A statement did not finish before its deadline (the session is then unusable)."""


@dataclass(frozen=True)
class Reply:
    """What one statement printed: its rows and its error lines (``ERROR ...``)."""

    rows: list[tuple[str, ...]]
    errors: list[str]


class Statements(Protocol):
    """Runs statements in one session (`ClientSession`; tests give a scripted one)."""

    connection_id: int | None

    def run(self, sql: str, *, deadline: float) -> Reply:
        """Run ``sql`` and return its rows and errors (see `ClientSession.run`)."""
        ...


class ClientSession:
    """A running ``mariadb``/``mysql`` client fed statements one at a time."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._stdin: IO[bytes] = _pipe(proc.stdin)
        self._stdout: IO[bytes] = _pipe(proc.stdout)
        self._stderr: IO[bytes] = _pipe(proc.stderr)
        self._marker = f"end-{secrets.token_hex(8)}"
        self._count = 0
        self.connection_id: int | None = None
        #: a statement may still run on the server: end the connection when leaving
        self.abandoned = False

    def run(self, sql: str, *, deadline: float) -> Reply:
        """Run ``sql`` (one or more statements) and return what it printed.

        Args:
            sql: statements, each ending with ``;``; no secrets (they would be echoed in
                the client's error report).
            deadline: ``time.monotonic()`` value by which the reply must be complete.

        Raises:
            SessionTimeoutError: the deadline passed first.
            QueryError: the client ended or printed too much.
        """
        self._count += 1
        marker = f"{self._marker}-{self._count}"
        try:
            self._stdin.write(f"{sql}\nSELECT '{marker}';\n".encode())
            self._stdin.flush()
        except OSError as exc:
            raise QueryError(f"the database client ended: {self._stderr_tail()}") from exc
        out, err = self._read_until(marker.encode(), deadline)
        text = out.decode(errors="replace")
        rows = [tuple(map(_unescape, line.split("\t"))) for line in text.split("\n") if line]
        errors = [
            line.strip()
            for line in err.decode(errors="replace").splitlines()
            if line.startswith("ERROR")
        ]
        return Reply(rows=rows, errors=errors)

    def _read_until(self, marker: bytes, deadline: float) -> tuple[bytes, bytes]:
        out = bytearray()
        err = bytearray()
        end = b"\n" + marker + b"\n"
        with selectors.DefaultSelector() as selector:
            selector.register(self._stdout, selectors.EVENT_READ, out)
            selector.register(self._stderr, selectors.EVENT_READ, err)
            while not (out.endswith(end) or bytes(out) == end[1:]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.abandoned = True
                    raise SessionTimeoutError(
                        "the statement did not finish within its time budget"
                    )
                for key, _ in selector.select(min(remaining, 1.0)):
                    data = os.read(key.fd, _READ)
                    if not data:
                        raise QueryError(f"the database client ended: {self._stderr_tail(err)}")
                    buffer: bytearray = key.data
                    buffer += data
                if len(out) > MAX_OUTPUT:
                    raise QueryError(f"a statement printed more than {MAX_OUTPUT} bytes")
            # errors reach stderr before the marker's row reaches stdout: read what is there
            while selector.select(0):
                data = os.read(self._stderr.fileno(), _READ)
                if not data:
                    break
                err += data
        return bytes(out[: len(out) - len(end) + 1]), bytes(err)

    def _stderr_tail(self, err: bytearray | None = None) -> str:
        text = bytes(err or b"").decode(errors="replace").strip()
        lines = [line for line in text.splitlines() if line.startswith("ERROR")]
        return (lines[-1] if lines else text[-300:]) or "no error message"

    def abort(self) -> None:
        """End the client now, from any thread.

        A `run` waiting for its reply raises `QueryError`; `open_session` then ends the
        connection on the server (its statement would run on otherwise).
        """
        self.abandoned = True
        with contextlib.suppress(OSError):
            self._proc.kill()

    def close(self) -> None:
        """End the client (closing stdin ends the session; killed if it lingers)."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._stdout, self._stderr):
            stream.close()


_ESCAPES = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}


def _unescape(value: str) -> str:
    r"""A batch-mode value as the server sent it (``\n``, ``\t``, ``\0``, ``\\`` undone)."""
    if "\\" not in value:
        return value
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value)


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:
        raise ValueError("the client must be started with pipes")
    return stream


@contextlib.contextmanager
def open_session(
    conn: ConnectionSpec, *, client: str, workdir: str | os.PathLike[str] | None, deadline: float
) -> Generator[ClientSession, None, None]:
    """Start the client and yield its session (knowing its ``connection_id``); end it after.

    Raises:
        QueryError: the client is missing or cannot connect.
    """
    with conn.defaults_file(workdir) as defaults:
        argv = [
            client,
            f"--defaults-extra-file={Path(defaults)}",
            "--batch",
            "--skip-column-names",
            "--unbuffered",
            "--force",
            "--connect-timeout=10",
        ]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError as exc:
            raise QueryError(f"the database client {client!r} is not installed") from exc
        session = ClientSession(proc)
        try:
            reply = session.run("SELECT CONNECTION_ID();", deadline=deadline)
            if reply.errors or not reply.rows:
                raise QueryError(f"cannot connect: {'; '.join(reply.errors) or 'no answer'}")
            session.connection_id = int(reply.rows[0][0])
            yield session
        finally:
            if session.abandoned:  # its statement may run on: end the connection
                _kill(conn, client, workdir, session.connection_id)
            session.close()


def _kill(
    conn: ConnectionSpec,
    client: str,
    workdir: str | os.PathLike[str] | None,
    connection_id: int | None,
) -> None:
    """End a connection, its running statement and its snapshot (best effort)."""
    if connection_id is None:
        return
    try:
        sql = f"KILL {int(connection_id)};"
        run_query(conn, sql, client=client, workdir=workdir, timeout=10)
    except QueryError as exc:
        logger.warning("could not end the table measurement's connection: %s", exc)
