"""Scenario tests of binlog shipping: started, stopped, paused for a restore, resumed."""

from __future__ import annotations

import base64
import json
import stat
from typing import Any

from mysql_provider.shipping import UNIT
from ops import testing

from .conftest import CREDENTIALS, PASSWORD, FakeLauncher, FakeServer, job, relation, state

KEY = testing.Secret({"key": base64.b64encode(bytes(range(32))).decode()})


def shipping_request(enabled: bool = True, **extra: Any) -> str:
    request: dict[str, Any] = {"enabled": enabled}
    if enabled:
        request.update({
            "storage-interface": "s3", "compression": True, "interval-seconds": 60,
            "storage-config": {"bucket": "db-backups", "path": "prod",
                               "credentials-secret-id": CREDENTIALS.id},
            "encryption-secret-id": KEY.id,
        })  # fmt: skip
    request.update(extra)
    return json.dumps(request)


def shipping_status(out: testing.State, rel: testing.Relation) -> dict[str, Any]:
    return json.loads(out.get_relation(rel.id).local_unit_data["log-shipping"])


def timer_active(server: FakeServer) -> bool:
    return f"{UNIT}.timer" in server.active_units


def test_leader_starts_shipping_when_asked(ctx: testing.Context[Any], server: FakeServer) -> None:
    rel = relation(**{"log-shipping": shipping_request()})

    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0),
        state(rel, secrets=[CREDENTIALS, PASSWORD, KEY]),
    )

    assert timer_active(server)
    assert shipping_status(out, rel) == {"enabled": True, "status": "running"}
    shipper = server.shipper()
    spec = json.loads(shipper.spec_path.read_text())
    assert stat.S_IMODE(shipper.spec_path.stat().st_mode) == 0o600
    assert spec["storage"]["secret-key"] == "unit-secret-key-value"
    assert base64.b64decode(spec["encryption-key"]) == bytes(range(32))
    assert spec["connection"]["user"] == "charm-backup"
    units = server.state_dir.parents[2] / "etc/systemd/system"
    service = (units / f"{UNIT}.service").read_text()
    assert "ship-binlogs" in service
    assert "--binlog-dir /var/lib/mysql-binlog" in service
    # interval-seconds 60, but the default max lag (60 s) asks for a run every 30 s
    assert "OnUnitInactiveSec=30" in (units / f"{UNIT}.timer").read_text()
    assert "unit-secret-key-value" not in service
    assert out.unit_status == testing.ActiveStatus("shipping binlogs")


def test_shipping_stops_when_no_longer_asked(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    rel = relation(**{"log-shipping": shipping_request()})
    secrets = [CREDENTIALS, PASSWORD, KEY]
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel, secrets=secrets))
    off = relation(**{"log-shipping": shipping_request(enabled=False)})
    off = testing.Relation(
        rel.endpoint, interface=rel.interface, remote_app_name=rel.remote_app_name, id=rel.id,
        remote_app_data=off.remote_app_data,
        local_unit_data=dict(out.get_relation(rel.id).local_unit_data),
    )  # fmt: skip

    out = ctx.run(ctx.on.relation_changed(off, remote_unit=0), state(off, secrets=secrets))

    assert not timer_active(server)
    assert not server.shipper().spec_path.exists()
    assert shipping_status(out, off) == {
        "enabled": False, "status": "stopped", "message": "not requested"
    }  # fmt: skip


def test_only_the_leader_ships(ctx: testing.Context[Any], server: FakeServer) -> None:
    rel = relation(**{"log-shipping": shipping_request()})

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0),
                  state(rel, leader=False, secrets=[CREDENTIALS, PASSWORD, KEY]))  # fmt: skip

    assert not timer_active(server)
    assert shipping_status(out, rel)["message"] == "the leader unit ships the binlogs"


def test_an_unreadable_secret_stops_shipping_with_the_reason(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    rel = relation(**{"log-shipping": shipping_request()})

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel, secrets=[PASSWORD, KEY]))

    assert not timer_active(server)
    status = shipping_status(out, rel)
    assert status["status"] == "stopped"
    assert CREDENTIALS.id in status["message"]


def test_a_restore_pauses_shipping_which_then_resumes_on_the_engines_new_timeline(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    secrets = [CREDENTIALS, PASSWORD, KEY]
    rel = relation(job("restore-1", "restore"), **{"log-shipping": shipping_request()})
    server.active_units.add(f"{UNIT}.timer")  # shipping ran before the restore was asked for

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel, secrets=secrets))

    assert not timer_active(server)
    assert shipping_status(out, rel)["message"] == "paused while the database is restored"

    launcher.finish(launcher.started[0], result={"backup-id": "20261122T071500Z-3fa9"})
    out = ctx.run(ctx.on.update_status(), out)

    assert timer_active(server)
    # the engine started a new timeline with the restore; its next run reports it
    shipper = server.shipper()
    shipper.state_path.write_text(json.dumps({
        "status": "success", "finished-at": "2026-11-22T08:05:00+00:00",
        "result": {"timeline": "2", "shipped": ["bin.000001"]},
    }))  # fmt: skip
    out = ctx.run(ctx.on.update_status(), out)
    assert shipping_status(out, rel) == {
        "enabled": True, "status": "running", "timeline": "2",
        "last-shipped-file": "bin.000001", "last-shipped-at": "2026-11-22T08:05:00Z",
    }  # fmt: skip
    assert out.unit_status == testing.ActiveStatus("shipping binlogs (timeline 2)")


def test_a_failed_shipping_run_is_reported(ctx: testing.Context[Any], server: FakeServer) -> None:
    rel = relation(**{"log-shipping": shipping_request()})
    shipper = server.shipper()
    shipper.dir.mkdir(parents=True)
    failed = {"status": "error", "message": "S3 rejected the credentials"}
    shipper.state_path.write_text(json.dumps(failed))

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0),
                  state(rel, secrets=[CREDENTIALS, PASSWORD, KEY]))  # fmt: skip

    assert shipping_status(out, rel) == {
        "enabled": True, "status": "error", "message": "S3 rejected the credentials"
    }  # fmt: skip
