"""The provider side of `cos_agent` v0: the charm's rules, dashboards and scrape jobs."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import ops

from .config import CONFIG_KEY, RulesError, ScrapeEndpoint, Topology, unit_config

logger = logging.getLogger(__name__)

DEFAULT_RELATION = "cos-agent"


class CosAgentProvider(ops.Object):
    """Writes the unit's `cos_agent` databag on relation and upgrade events.

    Paths are relative to the charm directory unless absolute. A rule file or dashboard
    that cannot be read is logged as an error and nothing is written (the previous data
    stays): a bad file never fails a hook.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = DEFAULT_RELATION,
        *,
        metrics_rules_dir: str | None = "src/prometheus_alert_rules",
        logs_rules_dir: str | None = "src/loki_alert_rules",
        dashboard_dirs: Sequence[str] = ("src/grafana_dashboards",),
        endpoints: Sequence[ScrapeEndpoint] = (),
        metric_prefix: str | None = None,
    ) -> None:
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._metrics_rules_dir = metrics_rules_dir
        self._logs_rules_dir = logs_rules_dir
        self._dashboard_dirs = tuple(dashboard_dirs)
        self._endpoints = tuple(endpoints)
        self._metric_prefix = metric_prefix
        events = charm.on[relation_name]
        for event in (
            events.relation_joined,
            events.relation_changed,
            charm.on.upgrade_charm,
            charm.on.config_changed,
        ):
            self.framework.observe(event, self._on_refresh)

    def _path(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self._charm.charm_dir / path

    def config(self) -> dict[str, object]:
        """The `config` object this unit publishes.

        Raises:
            RulesError: a rule file or dashboard cannot be read.
        """
        model = self._charm.model
        topology = Topology(
            model=model.name,
            model_uuid=model.uuid,
            application=self._charm.app.name,
            charm=self._charm.meta.name,
        )
        return unit_config(
            topology=topology,
            metrics_rules_dir=self._path(self._metrics_rules_dir)
            if self._metrics_rules_dir
            else None,
            logs_rules_dir=self._path(self._logs_rules_dir) if self._logs_rules_dir else None,
            dashboard_dirs=[self._path(d) for d in self._dashboard_dirs],
            endpoints=self._endpoints,
            metric_prefix=self._metric_prefix,
        )

    def refresh(self) -> None:
        """Publish the config in every `cos_agent` relation's unit databag (if changed)."""
        relations = self.model.relations[self._relation_name]
        if not relations:
            return
        try:
            text = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        except (RulesError, OSError) as exc:
            logger.error("cos-agent data not published: %s", exc)
            return
        for relation in relations:
            databag = relation.data[self.model.unit]
            if databag.get(CONFIG_KEY) != text:
                databag[CONFIG_KEY] = text

    def _on_refresh(self, _: ops.EventBase) -> None:
        self.refresh()
