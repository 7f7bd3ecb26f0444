"""The fixed start cost of a CLI backup and restore (issue 14, findings 4 and 7).

Run: ``uv run --frozen python -m bench.start_cost --size 256 --rounds 3 --baseline REV``.
It starts its own MariaDB and Ceph RGW (tests/infra), grows one InnoDB table to
``--size`` MiB, then in interleaved rounds runs, as cold processes, the CLI's ``backup``
and a ``restore`` of that backup (in place: the server is stopped, swapped, restarted),
once with this tree's library and once with the library of ``--baseline`` (a git
revision, extracted with ``git archive`` and put first on PYTHONPATH; nothing in the
working tree changes). Each CLI process runs under an audit hook (``sys.addaudithook``)
that timestamps, from the interpreter's start, every process spawned and the first
connection to the gateway, so the trace shows where the time before the first byte goes:

    backup:  first S3 connection, the backup tool's spawn (mariabackup), exit
    restore: first S3 connection, processes spawned before ``mbstream`` (status, client),
             ``mbstream``'s spawn (the first downloaded byte flows), exit

Printed: medians per variant, and the import time of ``database_backup.cli`` and of
boto3 (``python -X importtime``, cumulative microseconds), with the load average.
The backup's table sums are turned off (``--table-sums-budget 0``): they run after the
stream and are not start cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.environment import bench_environment

MiB = 1 << 20
BUCKET = "bench"
CLUSTER = "model-bench/start-cost"

# The CLI in a fresh interpreter under an audit hook; the trace goes to argv[1].
_TRACED = r"""
import atexit, json, os, runpy, sys, time
t0 = time.monotonic()
trace_path, rgw_port = sys.argv[1], int(sys.argv[2])
events = []
def hook(event, args):
    if event == "subprocess.Popen":
        events.append(("spawn", os.path.basename(str(args[0])), time.monotonic() - t0))
    elif event == "socket.connect" and isinstance(args[1], tuple) and len(args[1]) >= 2:
        if args[1][1] == rgw_port:
            events.append(("s3-connect", "", time.monotonic() - t0))
sys.addaudithook(hook)
def dump():
    events.append(("exit", "", time.monotonic() - t0))
    with open(trace_path, "w") as out:
        json.dump(events, out)
atexit.register(dump)
sys.argv = ["database_backup.cli", *sys.argv[3:]]
runpy.run_module("database_backup.cli", run_name="__main__", alter_sys=True)
"""


def first(events: list[list[Any]], kind: str, name: str = "") -> float | None:
    """Seconds to the first event of `kind` (and executable `name`), or None."""
    for what, exe, at in events:
        if what == kind and (not name or exe == name):
            return float(at)
    return None


def summarise(events: list[list[Any]], tool: str) -> dict[str, float | int | None]:
    """The trace's figures: first S3 connection, the tool's spawn, spawns before it, exit."""
    tool_at = first(events, "spawn", tool)
    before = [e for e in events if e[0] == "spawn" and (tool_at is None or e[2] < tool_at)]
    return {
        "s3": first(events, "s3-connect"),
        "tool": tool_at,
        "spawns_before": len(before),
        "exit": first(events, "exit"),
    }


def run_traced(
    argv: list[str], env: dict[str, str], trace: Path, rgw_port: int
) -> list[list[Any]]:
    """Run the CLI with `argv` traced; return its events (raises if it failed)."""
    done = subprocess.run(
        [sys.executable, "-c", _TRACED, str(trace), str(rgw_port), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    events: list[list[Any]] = json.loads(trace.read_text())
    if os.environ.get("BENCH_SHOW_TRACE"):
        print("   ", argv[0], " ".join(f"{e[0]}:{e[1]}@{e[2]:.3f}" for e in events))
    return events


def import_times(env: dict[str, str]) -> dict[str, int]:
    """Cumulative import microseconds of the CLI package and of boto3.session."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import database_backup.cli.app, boto3.session"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, int] = {}
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in ("database_backup.cli.app", "boto3.session"):
            found[parts[2]] = int(parts[1])
    return found


def baseline_lib(base: Path, revision: str) -> Path:
    """The library of `revision`, extracted under `base` (the working tree is untouched)."""
    target = base / f"baseline-{revision[:12]}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "lib"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "lib"


def measure(base: Path, server: Any, gateway: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of backup + restore per variant; the figures of every run."""
    from database_backup.catalog import Catalog
    from database_backup.storage import S3Storage
    from tests.workload.engine_helpers import cli_env, cli_server

    config = gateway.s3_config(BUCKET)
    spec = {
        "cluster-id": CLUSTER,
        "storage": {"bucket": BUCKET, "endpoint": config.endpoint, "region": config.region,
                    "path": "start-cost"},
        **cli_server(server),
        "workdir": str(base / "work"),
    }  # fmt: skip
    spec_file = base / "spec.json"
    spec_file.write_text(json.dumps(spec))
    spec_file.chmod(0o600)
    variants: dict[str, dict[str, str]] = {"current": cli_env(config)}
    if args.baseline:
        old = baseline_lib(base, args.baseline)
        variants = {
            "baseline": dict(cli_env(config), PYTHONPATH=str(old)),
            **variants,
        }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"backup": [], "restore": []} for name in variants
    }
    imports = {name: import_times(env) for name, env in variants.items()}
    names = list(variants)
    common = ["--spec", str(spec_file)]
    for number in range(args.rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            env = variants[name]
            backup_id = f"20260101T{number:02d}{names.index(name):02d}00Z"
            state = base / "state.json"
            events = run_traced(
                ["backup", "--backup-id", backup_id, "--table-sums-budget", "0",
                 *common, "--state-file", str(state)],
                env, base / "trace.json", gateway.rgw_port,
            )  # fmt: skip
            runs[name]["backup"].append(summarise(events, "mariabackup"))
            events = run_traced(
                ["restore", "--backup-id", backup_id, *common, "--state-file", str(state)],
                env, base / "trace.json", gateway.rgw_port,
            )  # fmt: skip
            runs[name]["restore"].append(summarise(events, "mbstream"))
            print(f"  round {number + 1} {name}: backup {runs[name]['backup'][-1]}, "
                  f"restore {runs[name]['restore'][-1]}", flush=True)  # fmt: skip
            with S3Storage(gateway.s3_config(BUCKET, "start-cost")) as storage:
                storage.delete_prefix(Catalog(storage, CLUSTER).backup_prefix(backup_id))
    return {"runs": runs, "imports": imports}


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def report(result: dict[str, Any], size: int, rounds: int) -> str:
    """The table of medians (seconds from the interpreter's start)."""
    lines = [
        f"start cost at {size} MiB, medians of {rounds}, seconds from interpreter start",
        f"{'variant':>9} {'command':>8} {'1st S3':>7} {'tool':>6} {'spawns<':>7} {'exit':>7}",
    ]
    for name, commands in result["runs"].items():
        for command, runs in commands.items():
            cells = [_median([run[k] for run in runs]) for k in ("s3", "tool", "spawns_before")]
            end = _median([run["exit"] for run in runs])
            text = [f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells]
            lines.append(
                f"{name:>9} {command:>8} {text[0]:>7} {text[1]:>6} {text[2]:>7} {end or 0:>7.2f}"
            )
    for name, found in result["imports"].items():
        lines.append(
            f"{name:>9} imports (us, cumulative): "
            + ", ".join(f"{k} {v}" for k, v in sorted(found.items()))
        )
    one, five, _ = os.getloadavg()
    lines.append(f"load average {one:.1f} (1 min), {five:.1f} (5 min) at the end")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the start-cost bench and print its table."""
    parser = argparse.ArgumentParser(description="Start cost of a CLI backup and restore.")
    parser.add_argument("--size", type=int, default=256, help="database size in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="git revision whose library is compared")
    args = parser.parse_args(argv)
    if args.size <= 0 or args.rounds < 1:
        parser.error("--size takes a positive MiB value; --rounds at least 1")
    from bench.restore_pipeline import fill

    started = time.monotonic()
    with bench_environment("bench-start-cost-", max(2048, 3 * args.size), BUCKET) as env:
        fill(env.server, args.size)
        result = measure(env.base, env.server, env.gateway, args)
        print(report(result, args.size, args.rounds))
        print(f"bench took {time.monotonic() - started:.0f} s")
        return 0


if __name__ == "__main__":
    sys.exit(main())
