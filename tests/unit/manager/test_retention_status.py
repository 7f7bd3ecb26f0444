"""A failed retention run shows in the manager's status until a later run succeeds."""

from __future__ import annotations

import dataclasses
import datetime

from ops import testing

from .fakes import FakeS3
from .helpers import context, history_of
from .test_copy_and_parts import FakeStart
from .test_retention_worker import backed_up, fake_start, run_worker

__all__ = ["fake_start"]  # the fixture, used by name


def retention_runs(out: testing.State) -> list[dict[str, object]]:
    return [r for r in history_of(out) if r.get("type") == "retention"]


def test_a_failed_retention_run_shows_in_the_status_until_a_later_run_succeeds(
    s3: FakeS3, fake_start: FakeStart
):
    st, bucket = backed_up(s3)
    # today's daily run already done: only the runs this test drives exist. A daily run
    # that update-status starts is never run by the fake worker, and run_worker releases
    # every lock the fake holds, so it was judged dead and failed on its own (CI: "retention
    # ...-22a4 failed" still in the status after the reindex succeeded)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    peer = next(r for r in st.relations if isinstance(r, testing.PeerRelation))
    seeded = dataclasses.replace(
        peer, local_app_data={**peer.local_app_data, "last-retention": today}
    )
    st = dataclasses.replace(st, relations=[seeded if r is peer else r for r in st.relations])
    ctx = context()
    db = next(r for r in st.relations if r.endpoint == "database-backup")
    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), st)
    bucket.denied = True
    assert run_worker(fake_start) == 1
    bucket.denied = False

    out = ctx.run(ctx.on.update_status(), out)

    (failed,) = [r for r in retention_runs(out) if r["status"] == "error"]
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert f"retention {failed['job-id']} failed (see list-jobs)" in out.unit_status.message

    out = ctx.run(ctx.on.action("reindex", params={"application": "mysql"}), out)
    assert run_worker(fake_start) == 0
    out = ctx.run(ctx.on.update_status(), out)

    assert [r["status"] for r in retention_runs(out)][-1] == "success"
    assert "failed" not in out.unit_status.message
