"""Where the backups go: the S3 connection settings (the SDK client is built in `client`)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

URI_STYLES = ("path", "virtual")

#: botocore retry attempts (the first try included) on throttling, 5xx and connection errors.
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class S3Config:
    """An S3 bucket and how to reach it.

    Attributes:
        bucket: the bucket name.
        access_key: the S3 access key (never shown in reprs or logs).
        secret_key: the S3 secret key (never shown in reprs or logs).
        endpoint: the endpoint URL, e.g. "https://s3.example.com" or
            "http://127.0.0.1:7480"; None means AWS.
        region: the region to sign requests for; None lets botocore decide.
        path: a prefix inside the bucket applied to every key ("" = the bucket's root).
        uri_style: "path" (`endpoint/bucket/key`, what Ceph and most S3-compatible servers
            want) or "virtual" (`bucket.endpoint/key`).
        tls_ca_chain: PEM text of the CA bundle that signed the endpoint's certificate;
            None trusts the system's CAs.
    """

    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    endpoint: str | None = None
    region: str | None = None
    path: str = ""
    uri_style: str = "path"
    tls_ca_chain: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("S3Config.bucket is empty")
        if self.uri_style not in URI_STYLES:
            raise ValueError(
                f"S3Config.uri_style must be one of {URI_STYLES}, not {self.uri_style!r}"
            )

    @property
    def prefix(self) -> str:
        """`path` normalized to "" or "some/prefix/" (no leading slash, one trailing)."""
        path = self.path.strip("/")
        return f"{path}/" if path else ""

    def full_key(self, key: str) -> str:
        """The object key in the bucket for `key` relative to `path`."""
        return self.prefix + key.lstrip("/")

    def relative_key(self, full_key: str) -> str:
        """Inverse of `full_key`."""
        return full_key[len(self.prefix) :] if full_key.startswith(self.prefix) else full_key

    def location(self) -> str:
        """Where the data goes, safe to log: endpoint, bucket and prefix, no credentials."""
        return f"{self.endpoint or 'aws'}/{self.bucket}/{self.prefix}"

    def same_account(self, other: S3Config) -> bool:
        """Whether `other` uses the same endpoint and credentials (server-side copy works)."""
        return (
            self.endpoint == other.endpoint
            and self.region == other.region
            and self.access_key == other.access_key
            and self.secret_key == other.secret_key
        )


def client_kwargs(config: S3Config, ca_bundle_path: str | None) -> dict[str, Any]:
    """Keyword arguments for botocore's `Session.create_client("s3", ...)`, minus `config`."""
    kwargs: dict[str, Any] = {
        "aws_access_key_id": config.access_key,
        "aws_secret_access_key": config.secret_key,
    }
    if config.endpoint:
        kwargs["endpoint_url"] = config.endpoint
    if config.region:
        kwargs["region_name"] = config.region
    if ca_bundle_path:
        kwargs["verify"] = ca_bundle_path
    return kwargs


def write_ca_bundle(pem: str) -> str:
    """Write the CA chain to a private temporary file for botocore; return its path.

    The caller deletes it (`S3Storage.close()`).
    """
    fd, path = tempfile.mkstemp(prefix="s3-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(pem if pem.endswith("\n") else pem + "\n")
    return path
