"""The charm's configuration, as a pydantic model read with `charm.load_config`."""

from __future__ import annotations

from typing import Literal

import pydantic


class CharmConfig(pydantic.BaseModel):
    """Options in `config.yaml` (dashes become underscores)."""

    model_config = pydantic.ConfigDict(frozen=True)

    flavour: Literal["mysql", "mariadb"] = "mariadb"
    binlog_retention_days: int = pydantic.Field(default=7, ge=1, le=365)


def describe(error: pydantic.ValidationError) -> str:
    """One line per problem, naming the option as the admin types it."""
    parts: list[str] = []
    for item in error.errors():
        option = "-".join(str(part) for part in item["loc"]).replace("_", "-")
        parts.append(f"{option}: {item['msg']}")
    return "; ".join(parts)
