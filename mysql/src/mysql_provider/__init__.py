"""mysql-server charm logic; `charm.py` only wires events to it.

Modules:

- `workload`: the server on the unit (apt packages, option file, systemd, backup user);
  no `ops`, swapped for a fake in unit tests and pointed at a test server in workload tests.
- `config`: the charm config as a pydantic model.
- `specs`: from a job request to the engine's command line and 0600 spec (pure).
- `runner`: jobs on this unit through `database_backup.jobs` (detached workers, locks,
  publishing progress and results through the provider library).
- `shipping`: the binlog shipping timer (systemd) and its state; no `ops`.
- `service`: what each event does, the unit status and the actions.
"""
