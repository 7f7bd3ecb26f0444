"""What a Python process leaves out of its final garbage collections (`cli.leaving`).

`probe_env` returns an environment whose `sitecustomize` registers, before anything else
runs, an `atexit` handler (so it runs after every other one) that prints how many objects
are frozen; `frozen_count` reads that number back from the process's stderr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_SITECUSTOMIZE = """\
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count(), file=sys.stderr))
"""


def probe_env(directory: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the probe first on PYTHONPATH."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(directory), env.get("PYTHONPATH")]))
    return env


def frozen_count(stderr: str) -> int:
    """The frozen objects the probe reported (fails when it reported nothing)."""
    lines = [line for line in stderr.splitlines() if line.startswith("frozen ")]
    assert lines, stderr
    return int(lines[-1].split()[1])
