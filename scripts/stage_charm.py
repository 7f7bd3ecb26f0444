#!/usr/bin/env python3
"""Stage a charm and the shared `database_backup` package into a directory charmcraft packs.

charmcraft only sees the directory that holds `charmcraft.yaml`. The mysql-server charm lives
in `mysql/` and the package both charms need lives in `lib/`, outside it; the root charm's
directory holds the whole repository (tests, virtualenvs, build output). So `make pack` first
stages each charm into `build/<charm>/`:

    build/<charm>/
        charmcraft.yaml metadata.yaml config.yaml actions.yaml README.md   the charm's own files
        src/                    the charm's code
        lib/                    pyproject.toml + database_backup/ (symlinks resolved: the
                                interface's JSON schemas become real files)
        requirements.txt        every dependency pinned from uv.lock, then `./lib`

`with_bytecode_step` gives a charmcraft.yaml whose python part compiles the venv once the
plugin has built it (`override-build`: `craftctl default`, then `python3 -m compileall`
with `unchecked-hash` bytecode, which unpacking the charm with new mtimes cannot
invalidate): without it every hook and CLI process byte-compiles boto3/botocore again
(~0.7 s). `stage` writes the staged charmcraft.yaml with that step;
`python scripts/stage_charm.py --bytecode-step` prints it.

The charms pack with charmcraft's python plugin, which installs with `--no-deps`, so the
requirements file must be complete: it is exported from `uv.lock` (`uv export`), minus the
root project's dependencies this charm does not list (`--prune`). Each pin installs from a
binary wheel (the part's build-environment in charmcraft.yaml); `tests/dispatch/` primes
the staged tree the same way and runs its hooks. Nothing is duplicated in
git: the staged tree is a build artefact (`build/` is ignored).

    python scripts/stage_charm.py [--out build] backup-manager mysql-server
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
CHARM_FILES = ("charmcraft.yaml", "metadata.yaml", "config.yaml", "actions.yaml")
OPTIONAL_FILES = ("README.md", "LICENSE", "icon.svg")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PYTHON_PLUGIN = re.compile(r"^( +)plugin: python[ \t]*$", re.MULTILINE)
#: Run after the python plugin's build: the base's python3 (the venv's own interpreter)
#: compiles everything installed into the venv.
BYTECODE_STEP = (
    "craftctl default\n"
    'python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$CRAFT_PART_INSTALL/venv"\n'
)


@dataclass(frozen=True)
class Charm:
    """One charm of the repository: its name and the directory holding its files."""

    name: str
    directory: Path


CHARMS = {
    "backup-manager": Charm("backup-manager", ROOT),
    "mysql-server": Charm("mysql-server", ROOT / "mysql"),
}


def requirement_names(lines: list[str]) -> list[str]:
    """Normalised distribution names of the non-path lines of a requirements file."""
    names = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("-", ".", "/")):
            continue
        match = _NAME.match(line)
        if match:
            names.append(normalise(match.group(1)))
    return names


def normalise(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def local_paths(requirements: Path) -> list[Path]:
    """Directories a requirements file installs from (`./lib`, `../lib`...), resolved."""
    paths = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-e "):
            line = line[3:].strip()
        if line.startswith((".", "/")):
            paths.append((requirements.parent / line).resolve())
    return paths


def _lib_dependencies() -> list[str]:
    text = (LIB / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    if block is None:
        raise SystemExit(f"no dependencies list in {LIB / 'pyproject.toml'}")
    return requirement_names(re.findall(r'"([^"]+)"', block.group(1)))


def pinned_requirements(charm: Charm, uv: str | None = None) -> str:
    """The charm's complete, pinned requirements (from uv.lock) followed by `./lib`."""
    uv = uv or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not installed: run `make deps` (or install uv) and try again")
    wanted = set(
        requirement_names((charm.directory / "requirements.txt").read_text().splitlines())
    )
    wanted |= set(_lib_dependencies())
    root_direct = requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    prune = [f"--prune={name}" for name in root_direct if name not in wanted]
    argv = [
        uv,
        "export",
        "--frozen",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--no-default-groups",
        "--no-emit-workspace",
        *prune,
    ]
    exported = subprocess.run(
        argv, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    header = (
        f"# Generated by scripts/stage_charm.py from uv.lock for {charm.name}: every package\n"
        "# pinned (the python plugin installs with --no-deps), then the shared package.\n"
    )
    return f"{header}{exported}\n./lib\n"


def with_bytecode_step(text: str) -> str:
    """`text` (a charmcraft.yaml) with BYTECODE_STEP as its python part's override-build."""
    matches = list(_PYTHON_PLUGIN.finditer(text))
    if len(matches) != 1:
        raise SystemExit("charmcraft.yaml must have exactly one part with `plugin: python`")
    indent = matches[0].group(1)
    part_start, part_end = 0, len(text)
    for line in re.finditer(r"^( *)\S.*$", text, re.MULTILINE):
        if len(line.group(1)) < len(indent):  # a line outside the part's keys
            if line.start() < matches[0].start():
                part_start = line.end()
            else:
                part_end = line.start()
                break
    if f"\n{indent}override-build:" in text[part_start:part_end]:
        raise SystemExit(
            "the python part already has an override-build: add the bytecode step "
            "(stage_charm.BYTECODE_STEP) to it by hand, after `craftctl default`"
        )
    body = "".join(f"{indent}  {line}\n" for line in BYTECODE_STEP.splitlines())
    step = f"{indent}override-build: |\n{body}"
    return text[: matches[0].end() + 1] + step + text[matches[0].end() + 1 :]


def stage(charm: Charm, out: Path, uv: str | None = None) -> Path:
    """Copy one charm and `lib/` into `out/<charm>/`, write its requirements; return the dir."""
    target = out / charm.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in CHARM_FILES:
        shutil.copy2(charm.directory / name, target / name)
    project = target / "charmcraft.yaml"  # the packed venv ships its bytecode
    project.write_text(with_bytecode_step(project.read_text()))
    for name in OPTIONAL_FILES:
        if (charm.directory / name).is_file():
            shutil.copy2(charm.directory / name, target / name)
    shutil.copytree(charm.directory / "src", target / "src", ignore=IGNORED)
    (target / "lib").mkdir()
    shutil.copy2(LIB / "pyproject.toml", target / "lib" / "pyproject.toml")
    shutil.copytree(
        LIB / "database_backup", target / "lib" / "database_backup", ignore=IGNORED, symlinks=False
    )
    (target / "requirements.txt").write_text(pinned_requirements(charm, uv))
    problems = check_staged(target)
    if problems:
        raise SystemExit(f"staged {charm.name} is not packable: " + "; ".join(problems))
    return target


def check_staged(target: Path) -> list[str]:
    """What is wrong with a staged charm directory (empty when charmcraft can pack it)."""
    problems = [f"missing {name}" for name in CHARM_FILES if not (target / name).is_file()]
    if not (target / "src" / "charm.py").is_file():
        problems.append("missing src/charm.py")
    for path in local_paths(target / "requirements.txt"):
        if not path.is_relative_to(target.resolve()):
            problems.append(f"requirements.txt points outside the charm: {path}")
        elif not (path / "pyproject.toml").is_file():
            problems.append(f"requirements.txt points at {path}, which holds no pyproject.toml")
    for link in target.rglob("*"):
        if link.is_symlink():
            problems.append(f"symlink left in the staged tree: {link.relative_to(target)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: stage the named charms (default both)."""
    parser = argparse.ArgumentParser(description="Stage charms with lib/ for charmcraft.")
    parser.add_argument("charms", nargs="*", help=f"charms to stage: {', '.join(CHARMS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument(
        "--bytecode-step", action="store_true", help="print the python part's bytecode step"
    )
    args = parser.parse_args(argv)
    if args.bytecode_step:
        print("override-build: |\n" + "".join(f"  {x}\n" for x in BYTECODE_STEP.splitlines()))
        return 0
    unknown = [name for name in args.charms if name not in CHARMS]
    if unknown:
        parser.error(f"unknown charm {', '.join(unknown)}: choose from {', '.join(CHARMS)}")
    for name in args.charms or list(CHARMS):
        target = stage(CHARMS[name], args.out)
        print(f"staged {name} in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
