"""The botocore S3 client for an `S3Config`, and the retry policy around it.

The only module that touches the AWS SDK (botocore, urllib3): it imports it when a client
is created (or an SDK error is classified), never at import time, so a charm hook that
imports `database_backup.storage` (or the catalog) does not pay ~0.3 s for it. The client
comes from botocore's own session, not boto3's: boto3 adds its import (s3transfer among
it: 0.19-0.21 s against 0.25-0.26 s to a first client here) for transfer helpers and
resources the storage does not use; the client is the same.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import random
import threading
import weakref
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from database_backup.storage import signing
from database_backup.storage.config import (
    DEFAULT_MAX_ATTEMPTS,
    S3Config,
    client_kwargs,
    write_ca_bundle,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry.

    Attributes:
        max_attempts: botocore attempts per request ("standard" mode: throttling, 5xx,
            connection errors; exponential backoff with jitter).
        part_attempts: our own attempts per multipart part (each made of up to
            `max_attempts` botocore attempts), with backoff between them.
        backoff: first backoff between part attempts, in seconds (doubles each time).
        backoff_max: the longest backoff, in seconds.
        abort_attempts: attempts to abort a failed multipart upload.
    """

    max_attempts: int = 5
    part_attempts: int = 3
    backoff: float = 1.0
    backoff_max: float = 16.0
    abort_attempts: int = 3

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1-based): exponential, jittered."""
        ceiling = min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto


class S3Client:
    """A botocore S3 client built from an `S3Config`, owning the CA bundle file it needs.

    Attributes:
        config: the settings.
        client: the botocore client (thread-safe; share it between threads).
    """

    def __init__(
        self, config: S3Config, *, max_pool_connections: int = 10, retry: RetryPolicy
    ) -> None:
        self.config = config
        _quiet_sdk_loggers()
        self._ca_path: str | None = None
        if config.tls_ca_chain:
            self._ca_path = write_ca_bundle(config.tls_ca_chain)
            weakref.finalize(self, _remove_file, self._ca_path)
        with _SESSION_LOCK:
            signing.install()  # parts signed with the hash the upload computed
            self.client: Any = _session().create_client(
                "s3",
                config=botocore_config(
                    config,
                    max_pool_connections=max_pool_connections,
                    max_attempts=retry.max_attempts,
                ),
                **client_kwargs(config, self._ca_path),
            )

    def close(self) -> None:
        """Close the HTTP connections and remove the CA bundle file."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self._ca_path:
            _remove_file(self._ca_path)
            self._ca_path = None


_SESSION_LOCK = threading.Lock()

#: SDK loggers whose DEBUG output holds whole request bodies (every part of an upload).
_SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def _quiet_sdk_loggers() -> None:
    """Keep the SDK's DEBUG records out of a root logger set to DEBUG (as a charm's is).

    botocore logs each request's parameters, body included, at DEBUG: with the root
    logger at DEBUG every uploaded part would be copied into the log, and the memory of
    whatever keeps log records (juju-log, pytest) would grow with the backup. Only
    loggers nobody configured (level NOTSET) are set to WARNING, so an explicit
    `logging.getLogger("botocore").setLevel(logging.DEBUG)` still works for debugging.
    """
    for name in _SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level == logging.NOTSET:
            sdk_logger.setLevel(logging.WARNING)


def _sdk(name: str) -> ModuleType:
    """Import a module of the AWS SDK on first use (the one place that does)."""
    return importlib.import_module(name)


def botocore_config(
    config: S3Config, *, max_pool_connections: int = 10, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> Any:
    """The botocore `Config` for `config`.

    Addressing style from `uri_style`; "standard" retries with exponential backoff; the
    checksum settings S3-compatible servers need (Ceph RGW 16.2 has no `x-amz-checksum-*`
    and rejects aws-chunked uploads over HTTPS): checksums only when the API requires them,
    integrity is verified end to end with our own SHA-256 instead.
    """
    return _sdk("botocore.config").Config(
        s3={"addressing_style": config.uri_style},
        retries={"max_attempts": max_attempts, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )


def sdk_exceptions() -> ModuleType:
    """`botocore.exceptions` (imported now if no client has been created yet)."""
    return _sdk("botocore.exceptions")


def stream_errors() -> tuple[type[BaseException], ...]:
    """What reading a response body raises when the connection breaks."""
    http_error: type[BaseException] = _sdk("urllib3.exceptions").HTTPError
    botocore_error: type[BaseException] = sdk_exceptions().BotoCoreError
    return (botocore_error, http_error, OSError)


@functools.cache
def _session() -> Any:
    """One botocore session for the process (call with `_SESSION_LOCK` held).

    A session loads the service models once: a client from a fresh session costs about
    100 ms, from a used one about 3 ms. Credentials are passed per client, never taken
    from the session.
    """
    return _sdk("botocore.session").Session()


def warm_up() -> None:
    """Import the SDK and load the S3 model now, so the first client is cheap (~3 ms).

    For a thread started where the process waits on something else (a child process, the
    network): the import holds the GIL most of its ~0.4-0.8 s. The throwaway client makes
    no request (dummy credentials, no endpoint contacted); errors are ignored: the real
    client creation reports them.
    """
    with contextlib.suppress(Exception), _SESSION_LOCK:
        _sdk("botocore.config")
        _session().create_client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id="warm-up",
            aws_secret_access_key="warm-up",  # noqa: S106 - not a credential: no request is made
        ).close()


def start_warm_up() -> threading.Thread:
    """Run `warm_up` in a daemon thread; join it before doing GIL-bound work meanwhile."""
    thread = threading.Thread(target=warm_up, name="sdk-warm-up", daemon=True)
    thread.start()
    return thread


def _remove_file(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
