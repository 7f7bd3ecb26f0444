"""The exporter's process: serve `/metrics` and refresh the sources in the background.

`python -m backup_manager.exporter --config FILE --port N`. The HTTP server answers each
scrape from the last readings (never waiting for storage); the main thread re-reads the
state file when it changes and storage when a refresh is due. A fatal start error (the
state file unreadable, the port taken) exits 1 so systemd restarts the service; a
storage error later never ends it. SIGTERM ends it with 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, start_http_server

from .metrics import SnapshotCollector
from .sources import REFRESH_SECONDS, Sources
from .state_file import StateFileError

logger = logging.getLogger("backup_manager.exporter")

PORT = 9582
POLL_SECONDS = 5.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (exit 2 with usage on a bad one)."""
    parser = argparse.ArgumentParser(
        prog="python -m backup_manager.exporter",
        description="Serve the backup-health metrics of the manager's clusters.",
    )
    parser.add_argument("--config", required=True, type=Path, help="the state file")
    parser.add_argument("--port", type=int, default=PORT, help=f"default {PORT}")
    parser.add_argument("--address", default="0.0.0.0", help="default 0.0.0.0")  # noqa: S104
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        default=REFRESH_SECONDS,
        help=f"read storage at most this often (default {REFRESH_SECONDS:g})",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=POLL_SECONDS,
        help=f"check the state file this often (default {POLL_SECONDS:g})",
    )
    return parser.parse_args(argv)


def serve(args: argparse.Namespace, stop: threading.Event) -> int:
    """Serve until `stop` is set; 1 on a fatal start error, else 0."""
    sources = Sources(args.config, refresh_seconds=args.refresh_seconds)
    try:
        sources.load()
    except StateFileError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(sources.snapshot))
    try:
        server, thread = start_http_server(args.port, addr=args.address, registry=registry)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", args.address, args.port, exc)
        return 1
    logger.info("serving metrics on %s:%d/metrics", args.address, args.port)
    try:
        while not stop.is_set():
            sources.reload()
            if sources.refresh_due():
                sources.refresh()
            stop.wait(args.poll_seconds)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        sources.close()
    logger.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter; the exit code."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return serve(args, stop)
