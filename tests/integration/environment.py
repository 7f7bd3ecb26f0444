"""What the integration tests need from the machine, and why they skip when it is missing.

The tests need a reachable Juju controller (the `juju` client and a current controller),
an S3 endpoint the Juju machines can reach, given by environment variables, and the two
packed charms (paths in environment variables, charms already in `build/`, or charmcraft to
pack them). Each `*_problem()` function returns a sentence saying what is missing and what to
do, or None.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
REQUIRED_S3 = ("S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY")
CHARM_VARIABLES = {"backup-manager": "BACKUP_MANAGER_CHARM", "mysql-server": "MYSQL_SERVER_CHARM"}
HOW_TO = "see docs/how-to/run-integration-tests.md"


def controller_problem() -> str | None:
    """Why no Juju controller can be used, or None when the current one answers."""
    juju = shutil.which("juju")
    if juju is None:
        return f"the juju client is not installed (snap install juju), {HOW_TO}"
    try:
        listed = subprocess.run(
            [juju, "controllers", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`juju controllers` did not answer within 60 s"
    if listed.returncode != 0:
        return f"`juju controllers` failed: {listed.stderr.strip() or listed.stdout.strip()}"
    try:
        current = json.loads(listed.stdout or "{}").get("current-controller")
    except json.JSONDecodeError:
        return "`juju controllers --format json` printed something that is not JSON"
    if not current:
        return f"juju has no current controller (juju bootstrap, or juju switch), {HOW_TO}"
    try:
        reached = subprocess.run(
            [juju, "models", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"controller {current!r} did not answer `juju models` within 120 s"
    if reached.returncode != 0:
        return f"controller {current!r} is not reachable: {reached.stderr.strip()}"
    return None


@dataclass(frozen=True)
class S3Settings:
    """The S3 endpoint the deployed charms use (it must be reachable from the Juju machines)."""

    endpoint: str
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = ""
    path: str = ""
    uri_style: str = "path"
    tls_ca_chain: str = ""  # PEM, as in S3_TLS_CA_CHAIN_FILE
    second_bucket: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> S3Settings:
        """Read `S3_*` variables; `S3_PATH` defaults to a fresh prefix per run."""
        env = dict(os.environ if environ is None else environ)
        ca_file = env.get("S3_TLS_CA_CHAIN_FILE", "")
        return cls(
            endpoint=env["S3_ENDPOINT"],
            bucket=env["S3_BUCKET"],
            access_key=env["S3_ACCESS_KEY"],
            secret_key=env["S3_SECRET_KEY"],
            region=env.get("S3_REGION", ""),
            path=env.get("S3_PATH") or f"integration/{secrets.token_hex(4)}",
            uri_style=env.get("S3_URI_STYLE", "path"),
            tls_ca_chain=Path(ca_file).read_text() if ca_file else "",
            second_bucket=env.get("S3_SECOND_BUCKET", ""),
        )

    def integrator_config(self, credentials_uri: str, *, second: bool = False) -> dict[str, str]:
        """`juju config` values of an s3-integrator (track 2) for this endpoint.

        The second location stands for another region: another bucket when
        `S3_SECOND_BUCKET` is set, else another prefix of the same bucket.
        """
        bucket = self.second_bucket if second and self.second_bucket else self.bucket
        path = f"{self.path}-second" if second and not self.second_bucket else self.path
        config = {
            "endpoint": self.endpoint,
            "bucket": bucket,
            "path": path,
            "s3-uri-style": self.uri_style,
            "credentials": credentials_uri,
        }
        if self.region:
            config["region"] = self.region
        if self.tls_ca_chain:
            # s3-integrator (track 2) base64-decodes this option, then parses the PEM chain.
            config["tls-ca-chain"] = base64.b64encode(self.tls_ca_chain.encode()).decode()
        return config


def s3_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why the S3 settings are unusable, or None."""
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_S3 if not env.get(name)]
    if missing:
        return (
            f"no S3 endpoint for the deployed charms: set {', '.join(missing)} "
            f"(and optionally S3_REGION, S3_PATH, S3_URI_STYLE, S3_TLS_CA_CHAIN_FILE), {HOW_TO}"
        )
    ca_file = env.get("S3_TLS_CA_CHAIN_FILE", "")
    if ca_file and not Path(ca_file).is_file():
        return f"S3_TLS_CA_CHAIN_FILE={ca_file} is not a file"
    return None


def built_charm(name: str, base: str) -> Path | None:
    """The charm `make pack` left in build/<name>/ for `base` (like ubuntu@24.04), if any."""
    found = sorted((BUILD / name).glob(f"{name}_*{base}*.charm"))
    return found[-1] if found else None


def charm_paths(base: str) -> tuple[dict[str, Path], str | None]:
    """Paths of both charms, and why they cannot be had (None when they can)."""
    paths: dict[str, Path] = {}
    for name, variable in CHARM_VARIABLES.items():
        given = os.environ.get(variable)
        if given:
            if not Path(given).is_file():
                return paths, f"{variable}={given} is not a file"
            paths[name] = Path(given).resolve()
            continue
        built = built_charm(name, base)
        if built is not None:
            paths[name] = built
    missing = [name for name in CHARM_VARIABLES if name not in paths]
    if missing and shutil.which("charmcraft") is None:
        variables = " and ".join(CHARM_VARIABLES[name] for name in missing)
        return paths, (
            f"no packed charm for {', '.join(missing)} and charmcraft is not installed: "
            f"set {variables} to .charm files, or install charmcraft and LXD, {HOW_TO}"
        )
    return paths, None


def pack_missing(paths: dict[str, Path], base: str) -> dict[str, Path]:
    """Run `make pack` when a charm is missing; return every charm's path."""
    if len(paths) == len(CHARM_VARIABLES):
        return paths
    subprocess.run(["make", "pack"], cwd=ROOT, check=True)
    for name in CHARM_VARIABLES:
        if name not in paths:
            built = built_charm(name, base)
            if built is None:
                raise FileNotFoundError(f"make pack made no {name} charm for {base} in {BUILD}")
            paths[name] = built
    return paths
