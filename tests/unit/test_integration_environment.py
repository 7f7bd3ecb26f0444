"""The integration tests' S3 settings, checked without a controller (they run in CI)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import jubilant

from backup_manager import params as params_mod
from backup_manager import results
from tests.integration import helpers
from tests.integration.environment import S3Settings

PEM = (
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\nMIIBtDCCAVqgAwIBAgIUR3E=\n-----END CERTIFICATE-----\n"
)
REQUIRED = {
    "S3_ENDPOINT": "https://s3.example:7480",
    "S3_BUCKET": "backups",
    "S3_ACCESS_KEY": "AK",
    "S3_SECRET_KEY": "SK",
}


def test_the_ca_chain_reaches_s3_integrator_base64_encoded(tmp_path: Path):
    """s3-integrator (track 2) base64-decodes `tls-ca-chain` before it parses the PEM."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(PEM)
    settings = S3Settings.from_env({**REQUIRED, "S3_TLS_CA_CHAIN_FILE": str(ca_file)})
    config = settings.integrator_config("secret:d4bqkqvmp25c7b2bkgsg")
    value = config["tls-ca-chain"]
    assert "\n" not in value
    assert base64.b64decode(value, validate=True).decode() == PEM


def test_no_ca_chain_no_option():
    config = S3Settings.from_env(REQUIRED).integrator_config("secret:d4bqkqvmp25c7b2bkgsg")
    assert "tls-ca-chain" not in config
    assert config["endpoint"] == "https://s3.example:7480"


class _PagedJuju:
    """Answers list-jobs as the charm does: pages from the newest, values as text."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.calls: list[dict[str, Any]] = []

    def run(self, unit: str, action: str, params: dict[str, Any], wait: float) -> Any:
        self.calls.append(params)
        given = params_mod.ListJobs(**params)  # refuses limit=0, as the charm does
        answer = results.page(
            self.rows,
            limit=given.limit,
            offset=given.offset,
            what="jobs",
            action=action,
            render=lambda shown: {"json": json.dumps(shown)},
        )
        return SimpleNamespace(results={key: str(value) for key, value in answer.items()})


def test_the_whole_history_is_read_page_by_page():
    rows = [{"job-id": f"job-{n:03d}"} for n in range(450)]
    juju = _PagedJuju(rows)
    assert helpers.jobs(cast("jubilant.Juju", juju)) == rows
    assert [call["offset"] for call in juju.calls] == [0, 200, 400]
