"""backup-manager charm logic, in modules named for what they do (charm.py stays thin)."""
