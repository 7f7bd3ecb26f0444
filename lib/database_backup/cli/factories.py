"""The engine's objects built from a spec: catalog (S3 storage), connection, server control."""

from __future__ import annotations

from database_backup.catalog import Catalog
from database_backup.contract import EngineSpec, SpecError
from database_backup.mysql import CommandServer, ConnectionSpec, ServerControl, SystemdServer
from database_backup.storage import S3Config, S3Storage


def make_catalog(spec: EngineSpec) -> Catalog:
    """S3Storage + Catalog for the spec's storage section and cluster id."""
    section = spec.storage
    config = S3Config(
        bucket=section.bucket,
        access_key=section.access_key,
        secret_key=section.secret_key,
        endpoint=section.endpoint,
        region=section.region,
        path=section.path,
        uri_style=section.uri_style,
        tls_ca_chain=section.tls_ca_chain,
    )
    storage = S3Storage(config, part_size=section.part_size, max_concurrency=section.concurrency)
    return Catalog(storage, spec.cluster_id)


def make_connection(spec: EngineSpec) -> ConnectionSpec:
    """ConnectionSpec from the spec's connection section."""
    section = spec.connection
    return ConnectionSpec(
        user=section.user or "root",
        password=section.password or "",
        host=section.host or "127.0.0.1",
        port=section.port or 3306,
        socket=section.socket,
    )


def make_server(spec: EngineSpec) -> ServerControl:
    """The ServerControl described by the spec's server section.

    Raises:
        SpecError: the spec has no server section.
    """
    server = spec.server
    if server is None:
        raise SpecError("a restore needs a 'server' section (how to stop/start it, datadir)")
    if server.kind == "command":
        return CommandServer(
            server.datadir,
            start=list(server.start),
            stop=list(server.stop),
            status=list(server.status),
        )
    return SystemdServer(server.unit or "", server.datadir)
