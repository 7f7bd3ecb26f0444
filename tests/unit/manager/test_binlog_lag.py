"""binlog-max-lag: the RPO the manager asks the databases to keep, sent with log shipping."""

from __future__ import annotations

import json

from ops import testing

from .helpers import context, db_relation, s3_relation, state


def _published(config: dict[str, object]) -> testing.State:
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    return ctx.run(ctx.on.config_changed(), state(rel, db, secrets=[secret], config=config))


def _request(out: testing.State) -> dict[str, object]:
    (db,) = [r for r in out.relations if r.endpoint == "database-backup"]
    return json.loads(out.get_relation(db.id).local_app_data["log-shipping"])


def test_the_default_lag_of_60_seconds_is_sent_with_the_shipping_request():
    assert _request(_published({}))["max-lag-seconds"] == 60


def test_the_configured_lag_is_sent():
    assert _request(_published({"binlog-max-lag": 600}))["max-lag-seconds"] == 600


def test_a_lag_out_of_bounds_is_blocked_naming_the_option_and_the_bounds():
    for lag in (9, 86401):
        out = _published({"binlog-max-lag": lag})
        assert isinstance(out.unit_status, testing.BlockedStatus)
        assert "binlog-max-lag" in out.unit_status.message
        assert "10" in out.unit_status.message or "86400" in out.unit_status.message
