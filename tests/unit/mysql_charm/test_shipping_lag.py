"""The requirer's max-lag-seconds sets the shipping timer's period and the rotation age."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mysql_provider.shipping import UNIT, shipping_cadence
from ops import testing

from .conftest import CREDENTIALS, PASSWORD, FakeServer, relation, state

KEY = testing.Secret({"key": base64.b64encode(bytes(range(32))).decode()})


def _request(**extra: Any) -> str:
    request: dict[str, Any] = {
        "enabled": True, "storage-interface": "s3", "compression": True,
        "storage-config": {"bucket": "db-backups", "path": "prod",
                           "credentials-secret-id": CREDENTIALS.id},
        "encryption-secret-id": KEY.id,
    }  # fmt: skip
    request.update(extra)
    return json.dumps(request)


def _units(ctx: testing.Context[Any], server: FakeServer, request: str) -> tuple[str, str]:
    rel = relation(**{"log-shipping": request})
    ctx.run(ctx.on.relation_changed(rel, remote_unit=0),
            state(rel, secrets=[CREDENTIALS, PASSWORD, KEY]))  # fmt: skip
    units = server.state_dir.parents[2] / "etc/systemd/system"
    return (units / f"{UNIT}.service").read_text(), (units / f"{UNIT}.timer").read_text()


def test_without_max_lag_the_default_60_seconds_is_kept(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    service, timer = _units(ctx, server, _request())

    assert "--rotate-after 30" in service
    assert "OnUnitInactiveSec=30" in timer
    # what the timer's service runs, rebuilt later (e.g. by a test firing the timer)
    command = server.shipper().command()
    assert command[command.index("--rotate-after") + 1] == "30"


def test_the_requested_lag_bounds_the_timer_period_and_the_rotation_age(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    service, timer = _units(ctx, server, _request(**{"max-lag-seconds": 600}))

    assert "--rotate-after 300" in service
    assert "OnUnitInactiveSec=300" in timer


def test_a_shorter_interval_asked_is_kept_and_the_rotation_age_follows(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    request = _request(**{"max-lag-seconds": 600, "interval-seconds": 60})
    service, timer = _units(ctx, server, request)

    assert "--rotate-after 540" in service
    assert "OnUnitInactiveSec=60" in timer


@pytest.mark.parametrize(
    ("lag", "interval", "period", "rotate_after"),
    [(60, 300, 30, 30), (10, 300, 10, 0), (11, 300, 10, 1), (86400, 300, 300, 86100)],
)
def test_cadence_period_never_exceeds_the_lag(
    lag: int, interval: int, period: int, rotate_after: int
) -> None:
    assert shipping_cadence(lag, interval) == (period, rotate_after)
    assert period + rotate_after == lag
