"""Lay a charm out the way charmcraft's python plugin primes it, without charmcraft.

What `charmcraft pack` puts in the .charm (charmcraft's `parts/plugins/_python.py`, its
`utils` cleanup and `dispatch.py`, read for this):

- the staged tree's `src/` and `lib/` copied as they are, the yaml files beside them;
- `venv/`: a virtual environment without pip, filled from `requirements.txt` with
  `--no-deps` (the part's build-environment sets PIP_NO_BINARY=:none:, so binary wheels;
  `./lib` is built from its directory), then `pip check`; `venv/bin/` emptied except
  `activate` (python-keep-bins is false);
- `dispatch`: a shell script that links `venv/bin/python` to the base's `python3` when it
  is missing, sets `PYTHONPATH=lib:src` (and `LD_LIBRARY_PATH` for staged libraries), and
  execs `src/charm.py` with the venv's python.

Here uv plays pip (`uv pip install --only-binary :all:` for the pins: a package without a
wheel fails the build, as it must not need a compiler on the build machine), and the base
python is the interpreter the project's own virtualenv was made from.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from scripts import stage_charm

# The behaviour of charmcraft's generated dispatch script, in our words.
DISPATCH = """\
#!/bin/sh
charm_dir="$(dirname "$(realpath "$0")")"
python="$charm_dir/venv/bin/python"
[ -e "$python" ] || ln -s "$(which python3)" "$python"
export PYTHONPATH="$charm_dir/lib:$charm_dir/src"
export LD_LIBRARY_PATH="$charm_dir/usr/lib:$charm_dir/lib:$charm_dir/usr/lib/$(uname -m)-linux-gnu"
exec "$python" "$charm_dir/src/charm.py"
"""


def base_python() -> Path:
    """The interpreter the project's virtualenv was created from (not the venv's link)."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def uv() -> str:
    """The uv binary; the tier needs it as `make deps` installs it."""
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not on PATH: run `make deps` (it installs uv), then retry")
    return found


def prime(name: str, out: Path) -> Path:
    """Stage charm `name` into `out/<name>/` and prime it as charmcraft would; return it."""
    charm_dir = stage_charm.stage(stage_charm.CHARMS[name], out)
    requirements = (charm_dir / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith(("#", "."))]
    (out / f"{name}-pins.txt").write_text("\n".join(pins) + "\n")
    venv = charm_dir / "venv"
    _run([uv(), "venv", "--quiet", "--python", str(base_python()), str(venv)])
    python = str(venv / "bin" / "python")
    install = [uv(), "pip", "install", "--quiet", "--python", python, "--no-deps"]
    _run([*install, "--only-binary", ":all:", "-r", str(out / f"{name}-pins.txt")])
    _run([*install, str(charm_dir / "lib")])
    _run([uv(), "pip", "check", "--quiet", "--python", python])
    for entry in (venv / "bin").iterdir():
        if entry.name != "activate":
            entry.unlink()
    if (venv / "lib64").is_symlink():
        (venv / "lib64").unlink()
    # the python part's bytecode step (stage_charm.BYTECODE_STEP), as charmcraft runs it
    compile_step = ["-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    _run([str(base_python()), *compile_step, str(venv)])
    dispatch = charm_dir / "dispatch"
    dispatch.write_text(DISPATCH)
    dispatch.chmod(0o755)
    return charm_dir


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
