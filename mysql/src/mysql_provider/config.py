"""The charm's configuration, as a pydantic model read with `charm.load_config`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Literal

import pydantic

DEFAULT_DRILL_DIRECTORY = "/var/lib/database-backup/drills"
GIB = 2**30


class CharmConfig(pydantic.BaseModel):
    """Options in `config.yaml` (dashes become underscores)."""

    model_config = pydantic.ConfigDict(frozen=True)

    flavour: Literal["mysql", "mariadb"] = "mariadb"
    binlog_retention_days: int = pydantic.Field(default=7, ge=1, le=365)
    drill_directory: str = DEFAULT_DRILL_DIRECTORY
    drill_min_free_gb: float | None = pydantic.Field(default=None, ge=0, le=1_000_000)
    table_sums_budget: int = pydantic.Field(default=60, ge=0, le=3600)

    @pydantic.field_validator("drill_directory")
    @classmethod
    def _absolute(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(
                f"give an absolute path without '..', like {DEFAULT_DRILL_DIRECTORY} "
                f"(got {value[:200]!r})"
            )
        return str(path)

    @property
    def drill_min_free_bytes(self) -> int | None:
        """`drill-min-free-gb` in bytes (None when unset)."""
        if self.drill_min_free_gb is None:
            return None
        return int(self.drill_min_free_gb * GIB)

    def drill_problem(self, live_dirs: Iterable[str]) -> str:
        """Why `drill-directory` cannot be used next to the live server's files ("" if ok)."""
        drills = PurePosixPath(self.drill_directory)
        for live in live_dirs:
            if drills == PurePosixPath(live) or PurePosixPath(live) in drills.parents:
                return (
                    f"drill-directory: {self.drill_directory} is inside the live server's "
                    f"{live}; choose a directory outside it (for example "
                    f"{DEFAULT_DRILL_DIRECTORY})"
                )
        return ""


def describe(error: pydantic.ValidationError) -> str:
    """One line per problem, naming the option as the admin types it."""
    parts: list[str] = []
    for item in error.errors():
        option = "-".join(str(part) for part in item["loc"]).replace("_", "-")
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{option}: {message}")
    return "; ".join(parts)
