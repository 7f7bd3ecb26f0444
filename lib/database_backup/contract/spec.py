"""The spec file: what an engine command needs, secrets included (written 0600)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from .values import JSON, SpecError, drop_none, json_object, optional_text

#: upload part size and parallel parts: the engine buffers about (concurrency + 1) parts,
#: so this bounds its memory (parts still grow after 1,000 of them, so 5 TB fit)
DEFAULT_PART_MB = 8
DEFAULT_CONCURRENCY = 4


@dataclasses.dataclass(frozen=True)
class StorageSection:
    """Where the backups are: an S3 bucket and the credentials for it."""

    bucket: str
    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)
    endpoint: str | None = None
    region: str | None = None
    path: str = ""
    uri_style: str = "path"
    tls_ca_chain: str | None = None
    part_size_mb: int | None = None
    max_concurrency: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> StorageSection:
        """Validate the spec's `storage` object.

        Raises:
            SpecError: a value is missing or out of range.
        """
        for name in ("bucket", "access-key", "secret-key"):
            if not optional_text(data, name):
                raise SpecError(f"storage {name!r} is missing (spec file or environment)")
        uri_style = data.get("uri-style") or "path"
        if uri_style not in ("path", "virtual"):
            raise SpecError("storage 'uri-style' must be 'path' or 'virtual'")
        part = data.get("part-size-mb", DEFAULT_PART_MB)
        if not isinstance(part, int) or isinstance(part, bool) or not 5 <= part <= 5120:
            raise SpecError("storage 'part-size-mb' must be an integer from 5 to 5120")
        concurrency = data.get("max-concurrency", DEFAULT_CONCURRENCY)
        if (
            not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or not 1 <= concurrency <= 32
        ):
            raise SpecError("storage 'max-concurrency' must be an integer from 1 to 32")
        return cls(
            bucket=str(data["bucket"]),
            access_key=str(data["access-key"]),
            secret_key=str(data["secret-key"]),
            endpoint=optional_text(data, "endpoint"),
            region=optional_text(data, "region"),
            path=optional_text(data, "path") or "",
            uri_style=str(uri_style),
            tls_ca_chain=optional_text(data, "tls-ca-chain"),
            part_size_mb=part if "part-size-mb" in data else None,
            max_concurrency=concurrency if "max-concurrency" in data else None,
        )

    def to_json(self) -> dict[str, JSON]:
        """The JSON object (credentials included)."""
        values: dict[str, JSON] = {
            "bucket": self.bucket,
            "endpoint": self.endpoint,
            "region": self.region,
            "path": self.path,
            "uri-style": self.uri_style,
            "tls-ca-chain": self.tls_ca_chain,
            "access-key": self.access_key,
            "secret-key": self.secret_key,
        }
        if self.part_size_mb is not None:
            values["part-size-mb"] = self.part_size_mb
        if self.max_concurrency is not None:
            values["max-concurrency"] = self.max_concurrency
        return values

    @property
    def part_size(self) -> int:
        """Upload part size in bytes."""
        return (self.part_size_mb or DEFAULT_PART_MB) * 2**20

    @property
    def concurrency(self) -> int:
        """Parallel upload parts."""
        return self.max_concurrency or DEFAULT_CONCURRENCY


@dataclasses.dataclass(frozen=True)
class ConnectionSection:
    """How to reach the database server; unset values take the engine's defaults."""

    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    socket: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> ConnectionSection:
        """Validate the spec's `connection` object.

        Raises:
            SpecError: the port is not a port number.
        """
        port = data.get("port", 3306)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise SpecError("connection 'port' must be an integer between 1 and 65535")
        password = data.get("password")
        return cls(
            user=optional_text(data, "user"),
            password=password if isinstance(password, str) else None,
            host=optional_text(data, "host"),
            port=port if "port" in data else None,
            socket=optional_text(data, "socket"),
        )

    def to_json(self) -> dict[str, JSON]:
        """The JSON object (password included); unset values are left out."""
        return drop_none(
            {
                "host": self.host,
                "port": self.port,
                "socket": self.socket,
                "user": self.user,
                "password": self.password,
            }
        )


@dataclasses.dataclass(frozen=True)
class ServerSection:
    """How to stop and start the server, and where its data is (restores need it).

    `kind` "systemd" names a `unit`; "command" gives `start`, `stop` and `status` argvs.
    """

    datadir: str
    kind: Literal["systemd", "command"] = "systemd"
    unit: str | None = None
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    status: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> ServerSection:
        """Validate the spec's `server` object.

        Raises:
            SpecError: the object is incomplete or of an unknown type.
        """
        if not isinstance(data, dict) or not isinstance(data.get("datadir"), str):
            raise SpecError("'server' must be an object with a 'datadir'")
        datadir = str(data["datadir"])
        kind = data.get("type", "systemd")
        if kind == "systemd":
            unit = data.get("unit")
            if not isinstance(unit, str):
                raise SpecError("a systemd 'server' needs a 'unit' (e.g. 'mysql')")
            return cls(datadir, "systemd", unit=unit)
        if kind != "command":
            raise SpecError("'server.type' must be 'systemd' or 'command'")
        argvs: list[tuple[str, ...]] = []
        for name in ("start", "stop", "status"):
            value = data.get(name)
            if not isinstance(value, list) or not value:
                raise SpecError(f"a command 'server' needs {name!r} as a list of strings")
            parts = [part for part in value if isinstance(part, str)]
            if len(parts) != len(value):
                raise SpecError(f"a command 'server' needs {name!r} as a list of strings")
            argvs.append(tuple(parts))
        return cls(datadir, "command", start=argvs[0], stop=argvs[1], status=argvs[2])

    def to_json(self) -> dict[str, JSON]:
        """The JSON object."""
        if self.kind == "systemd":
            return {"type": "systemd", "unit": self.unit, "datadir": self.datadir}
        return {
            "type": "command",
            "datadir": self.datadir,
            "start": list(self.start),
            "stop": list(self.stop),
            "status": list(self.status),
        }


def decode_key(text: str) -> bytes:
    """An encryption key from its spec form (base64 of 32 bytes).

    Raises:
        SpecError: not base64, or not 32 bytes.
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SpecError("the encryption key is not valid base64") from exc
    if len(key) != 32:
        raise SpecError(f"the encryption key must be 32 bytes (base64), got {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    """The spec's form of an encryption key (base64)."""
    return base64.b64encode(key).decode()


def default_workdir() -> Path:
    """The engine's working directory when the spec names none."""
    return Path(tempfile.gettempdir()) / "database-backup"


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    """The spec file's content: everything an engine command needs, secrets included."""

    cluster_id: str
    storage: StorageSection
    connection: ConnectionSection = ConnectionSection()
    server: ServerSection | None = None
    encryption_key: bytes | None = dataclasses.field(default=None, repr=False)
    workdir: Path | None = None

    def __repr__(self) -> str:
        return f"EngineSpec(cluster_id={self.cluster_id!r}, workdir={str(self.work_dir)!r})"

    @property
    def work_dir(self) -> Path:
        """The working directory (the default one when the spec names none)."""
        return self.workdir if self.workdir is not None else default_workdir()

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> EngineSpec:
        """Validate a spec document.

        Raises:
            SpecError: a required value is missing or malformed.
        """
        cluster_id = data.get("cluster-id")
        if not isinstance(cluster_id, str) or not cluster_id.strip("/"):
            raise SpecError("the spec needs a non-empty 'cluster-id' (e.g. '<model-uuid>/<app>')")
        storage = StorageSection.from_json(json_object(data, "storage", required=True))
        connection = ConnectionSection.from_json(json_object(data, "connection", required=False))
        key_text = data.get("encryption-key")
        if key_text is not None and not isinstance(key_text, str):
            raise SpecError("'encryption-key' must be a base64 string")
        server = data.get("server")
        workdir = optional_text(data, "workdir")
        return cls(
            cluster_id=cluster_id.strip("/"),
            storage=storage,
            connection=connection,
            server=ServerSection.from_json(server) if server is not None else None,
            encryption_key=decode_key(key_text) if key_text else None,
            workdir=Path(workdir) if workdir else None,
        )

    def to_json(self) -> dict[str, JSON]:
        """The document to write to the 0600 spec file (secrets included)."""
        values: dict[str, JSON] = {
            "cluster-id": self.cluster_id,
            "storage": self.storage.to_json(),
            "connection": self.connection.to_json(),
        }
        if self.server is not None:
            values["server"] = self.server.to_json()
        if self.workdir is not None:
            values["workdir"] = str(self.workdir)
        if self.encryption_key is not None:
            values["encryption-key"] = encode_key(self.encryption_key)
        return values
