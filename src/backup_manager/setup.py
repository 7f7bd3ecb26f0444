"""What the charm has to work with in this hook: config, storage locations, problems.

Read once per hook by the charm; `collect_unit_status` turns the problems into a status
and every other handler returns early when the setup is not usable.
"""

from __future__ import annotations

import dataclasses
import logging

import ops
import pydantic
from object_storage import S3Requirer

from database_backup.interface import remote_app

from . import encryption
from . import locations as locations_mod
from .config import ManagerConfig, describe_errors
from .locations import Location, LocationError

logger = logging.getLogger(__name__)

S3_ENDPOINT = "s3"


@dataclasses.dataclass
class Setup:
    """Config and locations of this hook, with the reasons they are not (yet) usable."""

    config: ManagerConfig | None = None
    config_error: str = ""
    locations: dict[str, Location] = dataclasses.field(default_factory=dict[str, Location])
    blocked: list[str] = dataclasses.field(default_factory=list[str])
    waiting: list[str] = dataclasses.field(default_factory=list[str])
    backup_location: Location | None = None
    encryption_key: encryption.Key | None = None
    encryption_error: str = ""

    @property
    def usable(self) -> bool:
        """True when config is valid and backups have somewhere to go."""
        return self.ready is not None

    @property
    def ready(self) -> Ready | None:
        """The usable parts (no Optional left), or None."""
        if self.config is None or self.backup_location is None:
            return None
        return Ready(self.config, self.backup_location, dict(self.locations))


@dataclasses.dataclass(frozen=True)
class Ready:
    """A usable setup: valid config and the location new backups go to."""

    config: ManagerConfig
    backup_location: Location
    locations: dict[str, Location]


def read(charm: ops.CharmBase, s3: S3Requirer) -> Setup:
    """Read config, s3 relations and the config secret into a `Setup`."""
    setup = Setup()
    try:
        setup.config = charm.load_config(ManagerConfig)
    except pydantic.ValidationError as exc:
        setup.config_error = describe_errors(exc)
        return setup
    if setup.config.encryption_key_secret is not None:
        try:
            setup.encryption_key = encryption.read_admin_key(setup.config.encryption_key_secret)
        except encryption.EncryptionKeyError as exc:
            setup.encryption_error = str(exc)
            setup.blocked.append(str(exc))
    relations = [r for r in charm.model.relations[S3_ENDPOINT] if remote_app(r) is not None]
    for relation in relations:
        _read_relation(setup, s3, relation)
    if not relations and setup.config.has_s3_settings:
        _read_options(setup, setup.config)
    if setup.locations:
        try:
            setup.backup_location = locations_mod.choose(
                setup.locations, setup.config.backup_location
            )
        except LocationError as exc:
            setup.blocked.append(f"backup-location: {exc}")
    elif not setup.blocked and not setup.waiting:
        setup.blocked.append(
            "no storage: relate an s3-integrator, or set s3-bucket and s3-credentials"
        )
    return setup


def _read_relation(setup: Setup, s3: S3Requirer, relation: ops.Relation) -> None:
    app = remote_app(relation)
    name = app.name if app is not None else "?"
    try:
        info = s3.get_storage_connection_info(relation)
    except (ops.SecretNotFoundError, ops.ModelError) as exc:
        logger.warning("cannot read the credentials of %s: %s", name, type(exc).__name__)
        setup.waiting.append(f"waiting for the credentials secret of s3-integrator {name}")
        return
    location = locations_mod.from_s3_info(name, info)
    if location is None:
        setup.waiting.append(f"waiting for bucket and credentials from s3-integrator {name}")
        return
    setup.locations[name] = location


def _read_options(setup: Setup, config: ManagerConfig) -> None:
    secret = config.s3_credentials
    if secret is None:
        setup.blocked.append(
            "s3-bucket is set but s3-credentials is not: juju add-secret s3-creds "
            "access-key=... secret-key=...; juju grant-secret s3-creds backup-manager; "
            "juju config backup-manager s3-credentials=<secret id>"
        )
        return
    try:
        content = secret.get_content(refresh=True)
    except (ops.SecretNotFoundError, ops.ModelError):
        setup.blocked.append(
            f"s3-credentials: secret {secret.id} is not granted to backup-manager (or does "
            f"not exist): juju grant-secret {secret.id} backup-manager"
        )
        return
    try:
        location = locations_mod.from_options(
            bucket=config.s3_bucket,
            credentials=content,
            endpoint=config.s3_endpoint,
            region=config.s3_region,
            path=config.s3_path,
            uri_style=config.s3_uri_style,
            tls_ca_chain=config.s3_tls_ca_chain,
        )
    except LocationError as exc:
        setup.blocked.append(str(exc))
        return
    setup.locations[location.name] = location
