"""The admin owns the encryption key: a user secret, or the generated one exported.

Scenario tests of the manager: the key a job carries, the status, the export action, and
restores that pick the key by the fingerprint `backup.json` records (two manager contexts:
an old manager's generated key given to a new manager as the admin's secret).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from ops import testing

from database_backup.catalog import Catalog
from database_backup.stream.crypto import fingerprint

from .fakes import FakeS3, add_backup
from .helpers import cluster, context, db_relation, jobs_of, s3_relation, state

ADMIN_KEY = base64.b64encode(bytes(range(32))).decode()
BACKUP = "20261121T010000Z-bbbb"
NAG = "encryption key only in this application: run export-encryption-key and keep it"


def fp(encoded: str) -> str:
    return fingerprint(base64.b64decode(encoded))


def admin_secret(content: dict[str, str] | None = None) -> testing.Secret:
    return testing.Secret(tracked_content=content or {"key": ADMIN_KEY})


def setup(
    *, admin: testing.Secret | None = None, encryption: bool = True, extra=()
) -> tuple[testing.Relation, testing.State]:
    db = db_relation()
    rel, creds = s3_relation()
    config: dict[str, Any] = {"encryption": encryption}
    secrets = [creds, *extra]
    if admin is not None:
        config["encryption-key-secret"] = admin.id
        secrets.append(admin)
    return db, state(rel, db, secrets=secrets, config=config)


def encrypted_backup(s3: FakeS3, key_fingerprint: str | None) -> None:
    bucket = s3.bucket("bucket-a")
    meta = add_backup(bucket, cluster(), BACKUP, hours_ago=24, encrypted=True)
    Catalog(bucket, cluster()).write_metadata(replace(meta, key_fingerprint=key_fingerprint))


def run(name: str, st: testing.State, **params: Any) -> tuple[dict[str, Any], testing.State]:
    ctx = context()
    out = ctx.run(ctx.on.action(name, params=params), st)
    assert ctx.action_results is not None
    return ctx.action_results, out


def failure(name: str, st: testing.State, **params: Any) -> tuple[str, testing.State]:
    ctx = context()
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(name, params=params), st)
    after = info.value.state
    assert isinstance(after, testing.State)
    return info.value.message, after


def sent_key(out: testing.State, db: testing.Relation) -> str:
    """The key content of the secret the (only) job names."""
    secret_id = jobs_of(out, db)[0]["encryption-secret-id"]
    return out.get_secret(id=secret_id).tracked_content["key"]


def peer_data(out: testing.State) -> dict[str, str]:
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return dict(relation.local_app_data)


# -- the admin's key ----------------------------------------------------------------------


def test_backups_use_the_admins_key_and_no_key_is_generated(s3: FakeS3):
    db, st = setup(admin=admin_secret())

    configured = context().run(context().on.config_changed(), st)
    _, out = run("create-backup", configured)

    assert sent_key(out, db) == ADMIN_KEY
    carrier = out.get_secret(label="encryption-key-admin")
    assert carrier.remote_grants == {db.id: {"mysql"}}
    with pytest.raises(KeyError):
        out.get_secret(label="encryption-key")
    shipping = json.loads(out.get_relation(db.id).local_app_data["log-shipping"])
    assert shipping["encryption-secret-id"] == carrier.id


def test_status_does_not_nag_when_the_admin_owns_the_key(s3: FakeS3):
    _, st = setup(admin=admin_secret())
    ctx = context()

    out = ctx.run(ctx.on.update_status(), st)

    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "export-encryption-key" not in out.unit_status.message


def test_a_key_secret_not_granted_blocks_with_the_grant_command():
    db = db_relation()
    rel, creds = s3_relation()
    config = {"encryption": True, "encryption-key-secret": "secret:d0notexist0000000000"}
    ctx = context()

    out = ctx.run(ctx.on.config_changed(), state(rel, db, secrets=[creds], config=config))

    assert out.unit_status == testing.BlockedStatus(
        "encryption-key-secret: secret secret:d0notexist0000000000 is not granted to "
        "backup-manager (or does not exist): juju grant-secret secret:d0notexist0000000000 "
        "backup-manager"
    )
    assert "encryption-secret-id" not in out.get_relation(db.id).local_app_data.get(
        "log-shipping", ""
    )


@pytest.mark.parametrize(
    "content",
    [{"key": "c2hvcnQ="}, {"key": "not base64!"}, {"password": ADMIN_KEY}],
    ids=["too-short", "not-base64", "no-key"],
)
def test_a_bad_key_secret_blocks_and_backups_are_refused(s3: FakeS3, content: dict[str, str]):
    db, st = setup(admin=admin_secret(content))
    ctx = context()

    blocked = ctx.run(ctx.on.update_status(), st)
    message, after = failure("create-backup", st)

    assert isinstance(blocked.unit_status, testing.BlockedStatus)
    assert "must hold 'key': 32 random bytes, base64-encoded" in blocked.unit_status.message
    assert "openssl rand -base64 32" in blocked.unit_status.message
    assert "must hold 'key'" in message
    assert jobs_of(after, db) == []
    assert ADMIN_KEY not in message


# -- the generated key: export and the reminder -------------------------------------------


def test_generated_key_nags_until_exported_then_the_reminder_ends(s3: FakeS3):
    _, st = setup()
    ctx = context()
    before = ctx.run(ctx.on.config_changed(), st)
    assert isinstance(before.unit_status, testing.ActiveStatus)
    assert before.unit_status.message.startswith(NAG)
    generated = before.get_secret(label="encryption-key").tracked_content["key"]

    results, out = run("export-encryption-key", before)
    after = context().run(context().on.update_status(), out)

    assert results["key"] == generated
    assert results["fingerprint"] == fp(generated)
    assert "encryption-key-secret" in results["instructions"]
    assert peer_data(out)["encryption-key-exported"] == fp(generated)
    assert generated not in json.dumps(peer_data(out))
    assert isinstance(after.unit_status, testing.ActiveStatus)
    assert NAG not in after.unit_status.message


def test_export_needs_the_leader():
    _, st = setup()
    message, _ = failure("export-encryption-key", replace(st, leader=False))
    assert "run this action on the leader" in message


def test_export_with_the_admins_key_says_there_is_nothing_to_export():
    _, st = setup(admin=admin_secret())
    message, _ = failure("export-encryption-key", st)
    assert message == (
        "this manager has no key of its own to export: it uses your key from "
        f"encryption-key-secret (fingerprint {fp(ADMIN_KEY)}), which you already hold"
    )


def test_export_with_encryption_off_fails():
    _, st = setup(encryption=False)
    message, _ = failure("export-encryption-key", st)
    assert "encryption is off" in message


# -- restores pick the key by fingerprint ---------------------------------------------------


def test_a_new_manager_given_the_old_managers_exported_key_restores_its_backup(s3: FakeS3):
    # the old manager generated a key; the admin exported it
    _, old_state = setup()
    old = context().run(context().on.config_changed(), old_state)
    exported, _ = run("export-encryption-key", old)
    encrypted_backup(s3, exported["fingerprint"])
    # a new manager (fresh state, nothing of the old one) gets it as a user secret
    db, new_state = setup(admin=admin_secret({"key": exported["key"]}), encryption=False)

    _, out = run("restore", new_state, **{"backup-id": BACKUP})

    assert sent_key(out, db) == exported["key"]


def test_a_backup_of_another_key_is_refused_before_a_job_is_sent(s3: FakeS3):
    other = base64.b64encode(b"\x07" * 32).decode()
    encrypted_backup(s3, fp(other))
    db, st = setup(admin=admin_secret())

    message, after = failure("restore", st, **{"backup-id": BACKUP})

    assert jobs_of(after, db) == []
    assert f"encrypted with the key of fingerprint {fp(other)}" in message
    assert f"{fp(ADMIN_KEY)} (admin)" in message
    assert ADMIN_KEY not in message


def test_the_generated_key_is_still_used_for_its_own_backups_after_an_admin_key_is_set(
    s3: FakeS3,
):
    db, st = setup()
    first = context().run(context().on.config_changed(), st)
    generated = first.get_secret(label="encryption-key").tracked_content["key"]
    encrypted_backup(s3, fp(generated))
    admin = admin_secret()
    config = dict(first.config) | {"encryption-key-secret": admin.id}
    later = replace(first, config=config, secrets=[*first.secrets, admin])

    _, out = run("restore", later, **{"backup-id": BACKUP})

    assert sent_key(out, db) == generated


def test_an_old_backup_without_a_fingerprint_uses_the_admins_key(s3: FakeS3):
    encrypted_backup(s3, None)
    db, st = setup(admin=admin_secret(), encryption=False)

    _, out = run("restore", st, **{"backup-id": BACKUP})

    assert sent_key(out, db) == ADMIN_KEY


@pytest.mark.parametrize("encryption", [False, True])
def test_a_new_manager_without_the_key_refuses_and_does_not_send_a_new_one(
    s3: FakeS3, encryption: bool
):
    encrypted_backup(s3, fp(ADMIN_KEY))
    db, st = setup(encryption=encryption)

    message, after = failure("restore", st, **{"backup-id": BACKUP})

    assert f"fingerprint {fp(ADMIN_KEY)}" in message
    assert "keys are none" in message
    assert "encryption-key-secret" in message
    assert jobs_of(after, db) == []


def test_the_key_is_in_no_log_line_of_the_export_or_a_restore(s3: FakeS3):
    _, st = setup()
    ctx = context()
    configured = ctx.run(ctx.on.config_changed(), st)
    generated = configured.get_secret(label="encryption-key").tracked_content["key"]
    encrypted_backup(s3, fp(generated))

    exported = ctx.run(ctx.on.action("export-encryption-key"), configured)
    ctx.run(ctx.on.action("restore", params={"backup-id": BACKUP}), exported)

    assert ctx.action_results is not None
    assert all(generated not in line.message for line in ctx.juju_log)
    assert any(fp(generated) in line.message for line in ctx.juju_log)
