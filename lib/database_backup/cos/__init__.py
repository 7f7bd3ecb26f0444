"""The provider side of the `cos_agent` v0 interface, for machine charms (imports `ops`).

Relate the charm to a COS collector (grafana-agent or opentelemetry-collector, both
subordinates) and it publishes its Prometheus and Loki alert rules, Grafana dashboards
and metrics scrape jobs through the unit databag's `config` key. No maintained PyPI
package provides this side; the shape follows the published interface
(charm-relation-interfaces `interfaces/cos_agent/v0/schema.py`) and the grafana-agent
charm's `cos_agent` library. Usage::

    import ops
    from database_backup.cos import CosAgentProvider, ScrapeEndpoint

    class MyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            self.cos = CosAgentProvider(
                self,
                endpoints=[ScrapeEndpoint("exporter", 9582)],
                metric_prefix="database_backup_",
            )

with `provides: cos-agent: interface: cos_agent` in metadata.yaml, rule files in
`src/prometheus_alert_rules/` and `src/loki_alert_rules/`, dashboards in
`src/grafana_dashboards/` (the charm directory's; other paths can be given). Log files
need nothing: the collectors tail `/var/log/**/*log` on the machine.
"""

from .config import (
    CONFIG_KEY,
    RulesError,
    ScrapeEndpoint,
    Topology,
    decode_dashboard,
    encode_dashboard,
    inject_matchers,
    unit_config,
)
from .provider import CosAgentProvider

__all__ = [
    "CONFIG_KEY",
    "CosAgentProvider",
    "RulesError",
    "ScrapeEndpoint",
    "Topology",
    "decode_dashboard",
    "encode_dashboard",
    "inject_matchers",
    "unit_config",
]
