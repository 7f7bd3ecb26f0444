"""mysql-server charm logic (charm.py stays thin)."""
