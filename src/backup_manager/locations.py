"""Storage locations: where backups go, one per s3-integrator relation or from config.

A location is a named bucket (and prefix) with its credentials. Each related
s3-integrator application is a location named after the application (that is how an
admin picks a region); without any s3 relation the s3-* options and the `s3-credentials`
user secret make one location named `default`. No `ops` here: the charm reads the
relation data and secrets and hands plain values to these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, cast

from database_backup.interface import StorageConfig
from database_backup.storage import RetryPolicy, S3Config, S3Storage

DEFAULT_LOCATION = "default"


class LocationError(Exception):
    """A location is unusable or unknown; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A named bucket and prefix with its credentials (never shown in a repr)."""

    name: str
    bucket: str
    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)
    endpoint: str | None = None
    region: str | None = None
    path: str = ""
    uri_style: str = "path"
    tls_ca_chain: str | None = dataclasses.field(default=None, repr=False)
    source: str = "config"

    def s3_config(self) -> S3Config:
        """The storage library's settings for this location."""
        return S3Config(
            bucket=self.bucket,
            access_key=self.access_key,
            secret_key=self.secret_key,
            endpoint=self.endpoint,
            region=self.region,
            path=self.path,
            uri_style=self.uri_style,
            tls_ca_chain=self.tls_ca_chain,
        )

    def storage_config(self, credentials_secret_id: str) -> StorageConfig:
        """What a job request carries: the location, with credentials by secret id."""
        return StorageConfig(
            bucket=self.bucket,
            endpoint=self.endpoint,
            region=self.region,
            path=self.path or None,
            uri_style=self.uri_style,
            tls_ca_chain=self.tls_ca_chain,
            credentials_secret_id=credentials_secret_id,
        )

    def describe(self) -> str:
        """Where it is, safe to show: endpoint, bucket and prefix."""
        return self.s3_config().location()

    def spec(self) -> dict[str, Any]:
        """Everything, credentials included, for a 0600 worker spec file only."""
        return dataclasses.asdict(self)

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Location:
        """Inverse of `spec`."""
        return cls(**dict(data))

    @property
    def fingerprint(self) -> str:
        """A short digest of the whole definition: changes when anything (keys too) changes."""
        text = json.dumps(self.spec(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def credentials(self) -> dict[str, str]:
        """The content of the Juju secret that carries the credentials to the provider."""
        return {"access-key": self.access_key, "secret-key": self.secret_key}


def from_s3_info(name: str, info: Mapping[str, Any]) -> Location | None:
    """The location an s3-integrator publishes, or None while its data is incomplete."""
    bucket = str(info.get("bucket") or "")
    access_key = str(info.get("access-key") or "")
    secret_key = str(info.get("secret-key") or "")
    if not (bucket and access_key and secret_key):
        return None
    chain = info.get("tls-ca-chain")
    if isinstance(chain, list):
        chain = "\n".join(str(part).strip() for part in cast("list[object]", chain)) or None
    style = str(info.get("s3-uri-style") or "path")
    return Location(
        name=name,
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        endpoint=str(info.get("endpoint") or "") or None,
        region=str(info.get("region") or "") or None,
        path=str(info.get("path") or "").strip("/"),
        uri_style=style if style in ("path", "virtual") else "path",
        tls_ca_chain=str(chain) if chain else None,
        source="s3-integrator",
    )


def from_options(
    *,
    bucket: str,
    credentials: Mapping[str, str],
    endpoint: str = "",
    region: str = "",
    path: str = "",
    uri_style: str = "path",
    tls_ca_chain: str = "",
) -> Location:
    """The `default` location from the s3-* options and the secret's content.

    Raises:
        LocationError: the bucket is unset or the secret lacks a key.
    """
    if not bucket:
        raise LocationError("s3-credentials is set but s3-bucket is empty: set s3-bucket")
    missing = [key for key in ("access-key", "secret-key") if not credentials.get(key)]
    if missing:
        raise LocationError(
            f"the s3-credentials secret has no {' or '.join(missing)}: update it with "
            "`juju update-secret <id> access-key=... secret-key=...`"
        )
    return Location(
        name=DEFAULT_LOCATION,
        bucket=bucket,
        access_key=credentials["access-key"],
        secret_key=credentials["secret-key"],
        endpoint=endpoint or None,
        region=region or None,
        path=path.strip("/"),
        uri_style=uri_style,
        tls_ca_chain=tls_ca_chain or None,
    )


def choose(locations: Mapping[str, Location], wanted: str = "") -> Location:
    """The location named `wanted`, or the only/first one when `wanted` is empty.

    Raises:
        LocationError: there is no location, or none by that name.
    """
    if not locations:
        raise LocationError(
            "no storage location: relate an s3-integrator application (juju integrate "
            "backup-manager s3-integrator) or set s3-bucket and s3-credentials"
        )
    if not wanted:
        return next(iter(locations.values()))
    if wanted not in locations:
        raise LocationError(
            f"unknown storage location {wanted!r}: use one of {', '.join(sorted(locations))}"
        )
    return locations[wanted]


def open_storage(location: Location, *, patient: bool = False) -> S3Storage:
    """An S3 client for `location` (unit tests replace this with an in-memory store).

    Hooks use few retries so a dead endpoint cannot hold a hook for minutes; the detached
    copy worker is `patient` and keeps the storage library's default retries.
    """
    retry = None if patient else RetryPolicy(max_attempts=2)
    return S3Storage(location.s3_config(), retry=retry)
