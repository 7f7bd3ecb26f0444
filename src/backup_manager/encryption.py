"""The encryption key: the admin's own (a user secret) or one the manager generated.

The admin owns the key when `encryption-key-secret` names a Juju user secret with `key`
(32 random bytes, base64) granted to the manager: the manager copies it into an app-owned
secret it can grant to the database applications (a charm cannot grant a user secret).
Otherwise the manager generates a key in its own secret; it lives only in this
application until the admin runs `export-encryption-key`, and the status says so.

Backups record the fingerprint of the key they were made with (`stream.crypto.fingerprint`),
so a restore picks the key by fingerprint and a key the manager does not have is refused
before any job is sent. Key bytes never reach logs, exceptions or the peer databag.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os

import ops

from database_backup.stream.crypto import KEY_SIZE, fingerprint

from .errors import ManagerError

GENERATED_LABEL = "encryption-key"
ADMIN_LABEL = "encryption-key-admin"
OPTION = "encryption-key-secret"
NAG = "encryption key only in this application: run export-encryption-key and keep it"
HOW_TO_CREATE = (
    'juju add-secret backup-key key="$(openssl rand -base64 32)"; '
    "juju grant-secret backup-key backup-manager; "
    f"juju config backup-manager {OPTION}=<secret id>"
)
HOW_TO_GIVE = (
    "juju add-secret backup-key key=<that key, base64>; "
    "juju grant-secret backup-key backup-manager; "
    f"juju config backup-manager {OPTION}=<secret id>"
)


class EncryptionKeyError(ManagerError):
    """The admin's key secret cannot be used (the message says what to do)."""


@dataclasses.dataclass(frozen=True)
class Key:
    """An encryption key as the providers receive it: `key` content, base64."""

    encoded: str
    source: str  # "admin" or "generated"

    @property
    def fingerprint(self) -> str:
        """The key's public fingerprint (as `backup.json` records it)."""
        return fingerprint(base64.b64decode(self.encoded))

    @property
    def label(self) -> str:
        """The label of the app-owned secret that carries it to the providers."""
        return ADMIN_LABEL if self.source == "admin" else GENERATED_LABEL


def check_encoded(text: str, what: str) -> str:
    """`text` if it is 32 bytes in base64, else raise EncryptionKeyError saying how to fix it."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise EncryptionKeyError(
            f"{what} must hold 'key': {KEY_SIZE} random bytes, base64-encoded "
            f"(create one with: {HOW_TO_CREATE})"
        )
    return base64.b64encode(raw).decode()


def read_admin_key(secret: ops.Secret) -> Key:
    """The admin's key from the `encryption-key-secret` user secret.

    Raises:
        EncryptionKeyError: not granted, or no valid `key` in it.
    """
    what = f"{OPTION}: secret {secret.id}"
    try:
        content = secret.get_content(refresh=True)
    except (ops.SecretNotFoundError, ops.ModelError):
        raise EncryptionKeyError(
            f"{what} is not granted to backup-manager (or does not exist): "
            f"juju grant-secret {secret.id} backup-manager"
        ) from None
    return Key(check_encoded(content.get("key", ""), what), "admin")


def generated_key(model: ops.Model, *, create: bool) -> Key | None:
    """The key this manager generated (created now when `create`), or None."""
    try:
        secret = model.get_secret(label=GENERATED_LABEL)
    except ops.SecretNotFoundError:
        if not create:
            return None
        encoded = base64.b64encode(os.urandom(KEY_SIZE)).decode()
        model.app.add_secret({"key": encoded}, label=GENERATED_LABEL)
        return Key(encoded, "generated")
    return Key(secret.peek_content().get("key", ""), "generated")


def carrier(model: ops.Model, key: Key) -> ops.Secret:
    """The app-owned secret carrying `key` to the providers (created or updated)."""
    content = {"key": key.encoded}
    try:
        secret = model.get_secret(label=key.label)
    except ops.SecretNotFoundError:
        return model.app.add_secret(content, label=key.label)
    if secret.peek_content() != content:
        secret.set_content(content)
    return secret


def for_backup(fingerprint_wanted: str | None, keys: list[Key], backup_id: str) -> Key:
    """The key to restore `backup_id` with: the one of its fingerprint, else the first.

    Raises:
        ManagerError: the backup records a fingerprint none of `keys` has, or no key.
    """
    if fingerprint_wanted is not None:
        for key in keys:
            if key.fingerprint == fingerprint_wanted:
                return key
        have = ", ".join(f"{k.fingerprint} ({k.source})" for k in keys) or "none"
        raise ManagerError(
            f"backup {backup_id} was encrypted with the key of fingerprint "
            f"{fingerprint_wanted}; this manager's keys are {have}: give the key it was "
            f"made with as a user secret ({HOW_TO_GIVE}); nothing was sent"
        )
    if not keys:
        raise ManagerError(
            f"backup {backup_id} is encrypted but this manager has no encryption key: give "
            f"the key it was made with as a user secret ({HOW_TO_GIVE}); nothing was sent"
        )
    return keys[0]


def nag(encryption: bool, admin_key: bool, generated: Key | None, exported: str | None) -> str:
    """The status reminder while the only copy of the key is this application's, else ''."""
    if not encryption or admin_key:
        return ""
    if generated is not None and generated.fingerprint == exported:
        return ""
    return NAG


def export_result(key: Key) -> dict[str, str]:
    """The `export-encryption-key` result: the key (once), its fingerprint, what to do."""
    return {
        "key": key.encoded,
        "fingerprint": key.fingerprint,
        "instructions": (
            "Store this key where the model cannot take it with it (a password manager or "
            "vault): without it the encrypted backups cannot be restored. To give it to a "
            f"new backup-manager: {HOW_TO_GIVE.replace('<that key, base64>', '<the key above>')}"
        ),
    }


def to_export(model: ops.Model, encryption: bool, admin_key: Key | None) -> Key:
    """The generated key to export (created now if encryption is on and it is missing).

    Raises:
        ManagerError: the manager has no key of its own (the admin's is used, or
            encryption is off).
    """
    key = generated_key(model, create=encryption and admin_key is None)
    if key is not None:
        return key
    if admin_key is not None:
        raise ManagerError(
            f"this manager has no key of its own to export: it uses your key from {OPTION} "
            f"(fingerprint {admin_key.fingerprint}), which you already hold"
        )
    raise ManagerError(
        "this manager has no encryption key: encryption is off "
        "(juju config backup-manager encryption=true to encrypt new backups)"
    )
