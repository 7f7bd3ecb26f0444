"""What a charm tells its COS collector over `cos_agent` v0 (pure: files in, a dict out).

The provider's unit databag holds one key, `config`: the JSON of this object (the shape of
`CosAgentProviderUnitData` in the grafana-agent charm's `cos_agent` library and of
`ProviderUnitData` in charm-relation-interfaces `interfaces/cos_agent/v0/schema.py`)::

    metrics_alert_rules  {"groups": [...]}   Prometheus rule groups, Juju topology labelled
    log_alert_rules      {"groups": [...]}   Loki rule groups, likewise
    dashboards           [str]               base64 of the LZMA-compressed dashboard JSON
    metrics_scrape_jobs  [scrape_config]     scraped on the unit (targets on localhost)
    log_slots            [str]               snap log slots (none here: deb packages)

The collector (grafana-agent or opentelemetry-collector, a subordinate) forwards the rules
and dashboards as they are; topology is the provider's job, as the `cosl` library does it:
each rule gets the `juju_model`, `juju_model_uuid`, `juju_application` and `juju_charm`
labels, and each selector of a metric named with `metric_prefix` gets the model and
application matchers, so two deployments' alerts never mix. In a log rule, the
`%%juju_topology%%` placeholder becomes the model matcher (the collector labels the
`/var/log` files it tails with its own application, not the principal's).
No `ops`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import lzma
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

CONFIG_KEY = "config"
RULE_SUFFIXES = (".rules", ".rule", ".yaml", ".yml")
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"


class RulesError(ValueError):
    """A rule file cannot be read as rule groups; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Topology:
    """Where the charm runs, as COS labels it."""

    model: str
    model_uuid: str
    application: str
    charm: str

    @property
    def labels(self) -> dict[str, str]:
        """The `juju_*` labels every rule gets."""
        return {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
            "juju_charm": self.charm,
        }

    @property
    def identifier(self) -> str:
        """A prefix for group names: model, short uuid, application."""
        return _safe(f"{self.model}_{self.model_uuid[:8]}_{self.application}")


@dataclasses.dataclass(frozen=True)
class ScrapeEndpoint:
    """A metrics endpoint on the unit."""

    name: str
    port: int
    path: str = "/metrics"


def encode_dashboard(content: bytes) -> str:
    """A dashboard as cos_agent carries it: base64 of its LZMA-compressed JSON."""
    return base64.b64encode(lzma.compress(content)).decode("ascii")


def decode_dashboard(encoded: str) -> dict[str, Any]:
    """The dashboard JSON back from its encoded form."""
    return cast("dict[str, Any]", json.loads(lzma.decompress(base64.b64decode(encoded))))


def load_rule_groups(directory: Path) -> list[dict[str, Any]]:
    """The rule groups of every rule file in `directory` (sorted by file name).

    Raises:
        RulesError: a file is not YAML with a `groups` list of named groups with rules.
    """
    if not directory.is_dir():
        return []
    groups: list[dict[str, Any]] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in RULE_SUFFIXES or not path.is_file():
            continue
        try:
            document: object = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RulesError(f"{path} is not valid YAML: {exc}") from None
        file_groups = _groups_of(document, path)
        groups.extend(file_groups)
    return groups


def _groups_of(document: object, path: Path) -> list[dict[str, Any]]:
    problem = (
        f"{path} must be a Prometheus/Loki rule file: `groups:` of named groups with `rules:`"
    )
    if not isinstance(document, dict):
        raise RulesError(problem)
    groups = cast("dict[str, object]", document).get("groups")
    if not isinstance(groups, list) or not groups:
        raise RulesError(problem)
    found: list[dict[str, Any]] = []
    for group in cast("list[object]", groups):
        if not isinstance(group, dict):
            raise RulesError(problem)
        typed = cast("dict[str, Any]", group)
        if not isinstance(typed.get("name"), str) or not isinstance(typed.get("rules"), list):
            raise RulesError(problem)
        found.append(typed)
    return found


def labelled_rules(
    groups: Sequence[Mapping[str, Any]],
    topology: Topology,
    *,
    metric_prefix: str | None = None,
    logql: bool = False,
) -> dict[str, Any]:
    """`{"groups": [...]}` with topology in group names, rule labels and selectors."""
    out: list[dict[str, Any]] = []
    for group in groups:
        rules: list[dict[str, Any]] = []
        for rule in cast("list[Mapping[str, Any]]", group["rules"]):
            labelled = dict(rule)
            labelled["labels"] = {**dict(rule.get("labels") or {}), **topology.labels}
            expr = str(rule.get("expr", ""))
            if logql:
                expr = expr.replace(TOPOLOGY_PLACEHOLDER, _matchers(topology, model_only=True))
            elif metric_prefix:
                expr = inject_matchers(expr, metric_prefix, _matchers(topology))
            labelled["expr"] = expr
            rules.append(labelled)
        out.append(
            {**dict(group), "name": f"{topology.identifier}_{group['name']}", "rules": rules}
        )
    return {"groups": out}


_PROMQL_TOKENS = re.compile(
    r"(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)"
    r"|(?P<labels>\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"
    r"|(?P<name>\b[A-Za-z_:][A-Za-z0-9_:]*)(?P<matchers>\s*\{[^}]*\})?"
)


def inject_matchers(expr: str, metric_prefix: str, matchers: str) -> str:
    """`expr` with `matchers` added to every selector of a metric named `metric_prefix...`.

    Strings, label lists (`by (...)`, `on (...)`...), functions and other metrics are left
    as they are.
    """

    def add(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None or not name.startswith(metric_prefix):
            return match.group(0)
        if expr[match.end() :].lstrip().startswith("("):
            return match.group(0)  # a function of that name
        inner = (match.group("matchers") or "").strip()[1:-1].strip().rstrip(",")
        return f"{name}{{{matchers}{',' + inner if inner else ''}}}"

    return _PROMQL_TOKENS.sub(add, expr)


def scrape_jobs(endpoints: Sequence[ScrapeEndpoint], application: str) -> list[dict[str, Any]]:
    """Prometheus scrape configs for endpoints on the unit (`<app>_<n>_<name>` job names)."""
    return [
        {
            "job_name": f"{application}_{index}_{endpoint.name}",
            "metrics_path": endpoint.path,
            "static_configs": [{"targets": [f"localhost:{endpoint.port}"]}],
        }
        for index, endpoint in enumerate(endpoints)
    ]


def dashboards(directories: Sequence[Path]) -> list[str]:
    """Every `*.json` dashboard in `directories`, encoded (sorted by file name).

    Raises:
        RulesError: a file is not a JSON object.
    """
    encoded: list[str] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            content = path.read_bytes()
            try:
                parsed: object = json.loads(content)
            except ValueError as exc:
                raise RulesError(f"dashboard {path} is not valid JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise RulesError(f"dashboard {path} must be a JSON object")
            encoded.append(encode_dashboard(content))
    return encoded


def unit_config(
    *,
    topology: Topology,
    metrics_rules_dir: Path | None = None,
    logs_rules_dir: Path | None = None,
    dashboard_dirs: Sequence[Path] = (),
    endpoints: Sequence[ScrapeEndpoint] = (),
    metric_prefix: str | None = None,
) -> dict[str, Any]:
    """The `config` object of the provider's unit databag (every v0 field present).

    Raises:
        RulesError: a rule file or dashboard cannot be read.
    """
    metrics = load_rule_groups(metrics_rules_dir) if metrics_rules_dir else []
    logs = load_rule_groups(logs_rules_dir) if logs_rules_dir else []
    return {
        "metrics_alert_rules": labelled_rules(metrics, topology, metric_prefix=metric_prefix)
        if metrics
        else {},
        "log_alert_rules": labelled_rules(logs, topology, logql=True) if logs else {},
        "dashboards": dashboards(dashboard_dirs),
        "metrics_scrape_jobs": scrape_jobs(endpoints, topology.application),
        "log_slots": [],
    }


def _matchers(topology: Topology, *, model_only: bool = False) -> str:
    pairs = [("juju_model_uuid", topology.model_uuid)]
    if not model_only:
        pairs.append(("juju_application", topology.application))
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)
