"""Job log lines (C6): one stable logfmt line per job start, end and error, no secret ever."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from database_backup import joblog
from database_backup.joblog import JobLine
from database_backup.jobs import JobRecord, JobStore

CLUSTER = "6f1c0b5e-1d2a-4c3b-9e8f-0a1b2c3d4e5f/mysql"

S3_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"

# What a spec file holds (the shape of EngineSpec.to_json), with secret-looking values.
SPEC = {
    "cluster-id": CLUSTER,
    "storage": {
        "bucket": "backups",
        "endpoint": "http://127.0.0.1:7480",
        "access-key": "AKIAEXAMPLEKEY0001",
        "secret-key": S3_SECRET,
    },
    "connection": {"user": "charm-backup", "password": "Pa55-w0rd-Very-Long-9876"},
    "admin": {"user": "root", "password": "r00t-secret-pw-1234"},
    "encryption-key": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
}

# Every key=value pair of a line: bare values or double-quoted ones with \" and \\ escapes.
_PAIR = re.compile(r'([a-z-]+)=("(?:[^"\\]|\\.)*"|[^ "]+)')


def parse(line: str) -> dict[str, str]:
    """A logfmt reader for the tests (unquotes and unescapes values)."""
    prefix, _, rest = line.partition(" ")
    assert prefix == joblog.PREFIX
    pairs: dict[str, str] = {}
    position = 0
    for match in _PAIR.finditer(rest):
        assert rest[position : match.start()].strip() == "", f"junk in {rest!r}"
        position = match.end()
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(
                r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value[1:-1]
            )
        pairs[match.group(1)] = value
    assert rest[position:].strip() == "", f"junk at the end of {rest!r}"
    return pairs


def test_a_start_line_has_the_contract_fields_in_order():
    line = JobLine.start("job-1", "backup", "full", CLUSTER).render()
    assert line == (
        f"database-backup-job event=start job-id=job-1 job-type=backup kind=full "
        f"cluster={CLUSTER} outcome=running"
    )


def test_an_end_line_has_the_duration_and_an_error_line_the_message():
    end = JobLine.end("job-1", "backup", "incremental", CLUSTER, duration_seconds=12.345)
    error = JobLine.error(
        "job-2", "restore", "pitr", CLUSTER, duration_seconds=3, message="S3 said 403 Forbidden"
    )
    assert parse(end.render()) == {
        "event": "end",
        "job-id": "job-1",
        "job-type": "backup",
        "kind": "incremental",
        "cluster": CLUSTER,
        "outcome": "success",
        "duration-seconds": "12.3",
    }
    assert error.render().endswith(
        'outcome=error duration-seconds=3 message="S3 said 403 Forbidden"'
    )


def test_quotes_newlines_and_backslashes_in_a_message_stay_on_one_parseable_line():
    message = 'tool said "no"\nline two \\ done\r\x00'
    line = JobLine.error("j", "drill", "-", CLUSTER, message=message).render()
    assert "\n" not in line
    assert "\r" not in line
    assert parse(line)["message"] == 'tool said "no"\nline two \\ done'


def test_values_with_spaces_or_quotes_are_quoted():
    line = JobLine.start('odd id "x"', "backup", "logical", "a cluster").render()
    fields = parse(line)
    assert fields["job-id"] == 'odd id "x"'
    assert fields["cluster"] == "a cluster"


def test_the_managers_location_keys_are_secrets_too():
    # a copy's or retention run's spec: its worker writes their lines with these hidden
    spec = {"copy-id": "copy-1", "cluster-id": CLUSTER,
            "source": {"name": "a", "access_key": "AK-SOURCE", "secret_key": "SK-SOURCE"},
            "dest": {"name": "b", "access_key": "AK-DEST", "secret_key": "SK-DEST"}}  # fmt: skip
    assert set(joblog.spec_secrets(spec)) == {"AK-SOURCE", "SK-SOURCE", "AK-DEST", "SK-DEST"}


def test_the_message_is_bounded_to_300_characters():
    line = JobLine.error("j", "backup", "full", CLUSTER, message="x" * 5000).render()
    assert len(parse(line)["message"]) == joblog.MAX_MESSAGE == 300
    assert len(line) < 600


def test_a_secret_from_the_spec_never_appears_in_a_line():
    secrets = joblog.spec_secrets(SPEC)
    assert set(secrets) == {
        "AKIAEXAMPLEKEY0001",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY",
        "Pa55-w0rd-Very-Long-9876",
        "r00t-secret-pw-1234",
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    }
    message = (
        "upload failed: SignatureDoesNotMatch for key wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY "
        "(access AKIAEXAMPLEKEY0001); mysql: Access denied using password Pa55-w0rd-Very-Long-9876"
    )
    line = JobLine.error("j", "backup", "full", CLUSTER, message=message).render(secrets)
    for secret in secrets:
        assert secret not in line
    assert "***" in line
    assert "SignatureDoesNotMatch" in line  # the useful part stays


def test_secret_looking_assignments_are_hidden_without_knowing_the_value():
    message = "boto said secret_key=abc123XYZ and password: hunter2hunter2, token=t0k3n"
    line = JobLine.error("j", "backup", "full", CLUSTER, message=message).render()
    for value in ("abc123XYZ", "hunter2hunter2", "t0k3n"):
        assert value not in line


def test_a_secret_cut_by_the_bound_does_not_leak_its_beginning():
    secret = "S3cr3tValueThatIsLong0123456789"
    message = "x" * 290 + secret
    line = JobLine.error("j", "backup", "full", CLUSTER, message=message).render([secret])
    assert "S3cr3t" not in line


@pytest.mark.parametrize(
    ("field", "value"),
    [("event", "begin"), ("job_type", "snapshot"), ("kind", "differential"), ("outcome", "ok")],
)
def test_a_value_outside_the_contract_is_refused_with_what_is_allowed(field: str, value: str):
    valid = JobLine.start("j", "backup", "full", CLUSTER)
    with pytest.raises(ValueError, match="one of"):
        dataclasses.replace(valid, **{field: value})


@pytest.mark.parametrize(
    ("request_", "work_kind", "expected"),
    [
        (
            {"job-type": "backup", "backup-kind": "incremental"},
            "incremental backup",
            ("backup", "incremental"),
        ),
        ({"job-type": "backup"}, "full backup", ("backup", "full")),
        ({"job-type": "backup"}, "logical backup", ("backup", "logical")),
        ({"job-type": "restore"}, "restore", ("restore", "-")),
        ({"job-type": "restore", "point-in-time": "latest"}, "restore", ("restore", "pitr")),
        (
            {"job-type": "backup", "verify-backup-id": "20261122T090021Z-a1"},
            "drill",
            ("drill", "-"),
        ),
        (
            {
                "job-type": "backup",
                "verify-backup-id": "b",
                "point-in-time": "2026-11-22T10:00:00Z",
            },
            "drill",
            ("drill", "pitr"),
        ),
        (None, "restore", ("restore", "-")),
        (None, "full backup", ("backup", "full")),
    ],
)
def test_describe_names_the_job_type_and_kind(request_, work_kind, expected):
    assert joblog.describe(request_, work_kind) == expected


def test_emit_logs_the_line_and_appends_it_to_the_file(tmp_path: Path, caplog):
    path = tmp_path / "log" / "jobs.log"
    first = JobLine.start("j1", "backup", "full", CLUSTER)
    second = JobLine.end("j1", "backup", "full", CLUSTER, duration_seconds=1)
    with caplog.at_level(logging.INFO, logger="database_backup.joblog"):
        joblog.emit(first, path)
        joblog.emit(second, path)
    assert path.read_text().splitlines() == [first.render(), second.render()]
    assert first.render() in caplog.text
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_error_line_is_logged_at_error_level(tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO, logger="database_backup.joblog"):
        joblog.emit(
            JobLine.error("j", "backup", "full", CLUSTER, message="boom"), tmp_path / "j.log"
        )
    assert [record.levelno for record in caplog.records] == [logging.ERROR]


def test_emit_survives_an_unwritable_file_and_still_logs(tmp_path: Path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.INFO, logger="database_backup.joblog"):
        line = joblog.emit(JobLine.start("j", "backup", "full", CLUSTER), blocker / "jobs.log")
    assert line in caplog.text
    assert "cannot append" in caplog.text


# -- the provider's worker writes the lines of the job it runs ---------------------------

FAILING_ENGINE = """
import json, sys
state = sys.argv[sys.argv.index("--state-file") + 1]
message = "S3 refused: SignatureDoesNotMatch with secret key " + {secret!r}
json.dump({{"status": "error", "phase": "uploading", "message": message}}, open(state, "w"))
sys.exit(1)
"""

PASSING_ENGINE = """
import json, sys
state = sys.argv[sys.argv.index("--state-file") + 1]
json.dump({"status": "success", "phase": "done", "result": {}}, open(state, "w"))
"""


def run_worker(
    tmp_path: Path,
    engine_code: str,
    request: dict[str, str],
    *,
    lines: bool = True,
    kind: str = "incremental backup",
) -> Path:
    """Run a job through the real worker process with a stand-in engine; its job log file.

    With `lines` False the record asks for no job line (`"job-log": null`).
    """
    job_log = tmp_path / "var-log" / "jobs.log"
    record = JobRecord(
        key="7-job-1",
        job_id="job-1",
        scope="7",
        kind=kind,
        command=("backup",),
        labels={
            "request": request,
            "cluster-id": CLUSTER,
            "job-log": str(job_log) if lines else None,
        },
        engine="stand_in_engine",
    )
    local = JobStore(tmp_path / "jobs").create(record, SPEC)
    (local.dir / "stand_in_engine.py").write_text(engine_code)  # `python -m` finds it in cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "database_backup.jobs.worker", str(local.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    local.log_path.write_text(result.stdout + result.stderr)
    return job_log


def test_a_job_that_asks_for_no_line_gets_none_and_its_worker_writes_none(tmp_path: Path):
    assert joblog.JobLog.for_job("job-9", "full backup", {"job-log": None}, None) is None
    job_log = run_worker(tmp_path, PASSING_ENGINE, {}, lines=False)
    output = (JobStore(tmp_path / "jobs").get("7-job-1") or pytest.fail("no job")).log_path
    assert "job job-1" in output.read_text()  # the worker ran the engine to its end
    assert joblog.PREFIX not in output.read_text()
    assert not job_log.exists()
    # a record from before the label (a worker an older revision started) keeps the default
    before = joblog.JobLog.for_job("job-2", "full backup", {"cluster-id": CLUSTER}, None)
    assert before is not None
    assert before.path == joblog.DEFAULT_PATH


@pytest.mark.parametrize("kind", ["copy", "retention"])
def test_the_managers_copies_and_retention_runs_are_their_own_job_type(tmp_path: Path, kind: str):
    # before, their worker logged them as `job-type=backup kind=full`: a failed retention
    # run raised the Loki alert as a failed backup of cluster "-"
    assert joblog.describe(None, kind) == (kind, "-")
    job_log = run_worker(tmp_path, FAILING_ENGINE.format(secret="-"), {}, kind=kind)
    start, error = job_log.read_text().splitlines()
    assert start == (
        f"{joblog.PREFIX} event=start job-id=job-1 job-type={kind} kind=- cluster={CLUSTER}"
        " outcome=running"
    )
    assert error.startswith(
        f"{joblog.PREFIX} event=error job-id=job-1 job-type={kind} kind=- cluster={CLUSTER}"
    )


def test_the_worker_writes_a_start_and_an_end_line(tmp_path: Path):
    request = {"job-id": "job-1", "job-type": "backup", "backup-kind": "incremental"}
    job_log = run_worker(tmp_path, PASSING_ENGINE, request)
    start, end = (parse(line) for line in job_log.read_text().splitlines())
    assert start == {
        "event": "start",
        "job-id": "job-1",
        "job-type": "backup",
        "kind": "incremental",
        "cluster": CLUSTER,
        "outcome": "running",
    }
    assert end["event"] == "end"
    assert end["outcome"] == "success"
    assert float(end["duration-seconds"]) >= 0


def test_the_worker_writes_an_error_line_without_the_spec_secrets(tmp_path: Path):
    secret = S3_SECRET
    request = {"job-id": "job-1", "job-type": "restore", "point-in-time": "latest"}
    job_log = run_worker(tmp_path, FAILING_ENGINE.format(secret=secret), request)
    lines = job_log.read_text().splitlines()
    error = parse(lines[-1])
    assert error["event"] == "error"
    assert error["job-type"] == "restore"
    assert error["kind"] == "pitr"
    assert error["message"].startswith("S3 refused: SignatureDoesNotMatch with secret key ***")
    worker_log = (tmp_path / "jobs" / "7-job-1" / "worker.log").read_text()
    assert lines[-1] in worker_log  # the job's own log has the line too
    for text in (job_log.read_text(), worker_log):
        for value in joblog.spec_secrets(SPEC):
            assert value not in text


def test_a_job_id_json_could_carry_as_a_lone_surrogate_is_still_written(tmp_path: Path):
    path = tmp_path / "jobs.log"
    joblog.emit(JobLine.start("job-\ud800", "backup", "full", CLUSTER), path)
    assert path.read_bytes().startswith(b"database-backup-job event=start job-id=")


def test_the_job_log_file_is_bounded_by_one_rotation(tmp_path: Path):
    path = tmp_path / "jobs.log"
    line = JobLine.start("j", "backup", "full", CLUSTER).render()
    for _ in range(50):
        joblog.append_line(path, line, max_bytes=1000)
    rotated = tmp_path / "jobs.log.1"
    assert path.stat().st_size <= 1000 + len(line) + 1
    assert rotated.stat().st_size <= 1000 + len(line) + 1
    assert set(path.read_text().splitlines()) == {line}
    assert not rotated.name.endswith("log")  # the collectors tail *log: not shipped twice
