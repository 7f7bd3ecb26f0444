"""The backup-health metrics exporter: a small service on the backup-manager unit.

It serves Prometheus metrics at `:9582/metrics` without any hook running:

- `metrics` turns a plain `Snapshot` into exposition text (no I/O);
- `sources` reads the local file the hooks write and the catalogs in storage into a
  snapshot (storage read at most once a minute, whatever the scrape rate);
- `server` (`python -m backup_manager.exporter --config FILE --port N`) serves it;
- `state_file` is what the hooks write (0600: it holds the storage credentials);
- `service` is the systemd unit the charm installs, enables and starts.
"""
