"""The operator actions' parameters, loaded into typed objects with `ActionEvent.load_params`.

Juju checks `actions.yaml` first; these models check each value again (a Juju that skips a
check, or a test, reaches the charm with it), and each message names the parameter as the
operator types it and says what to give instead.
"""

from __future__ import annotations

import pydantic

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ShowJobs(pydantic.BaseModel):
    """`show-jobs`: how many of the newest jobs to show."""

    model_config = pydantic.ConfigDict(frozen=True)

    limit: int = DEFAULT_LIMIT

    @pydantic.field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
            raise ValueError(
                f"limit={value!r:.40}: give a number of jobs from 1 to {MAX_LIMIT}, "
                f"like limit={DEFAULT_LIMIT}"
            )
        return value


class CancelJob(pydantic.BaseModel):
    """`cancel-job`: the job to stop."""

    model_config = pydantic.ConfigDict(frozen=True)

    job_id: str = pydantic.Field(default="", validate_default=True)

    @pydantic.field_validator("job_id", mode="before")
    @classmethod
    def _job_id(cls, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("give job-id=<id> of a running job (see show-jobs)")
        return value


def describe(error: pydantic.ValidationError) -> str:
    """The validators' own sentences, one per bad parameter."""
    parts: list[str] = []
    for item in error.errors():
        context = item.get("ctx") or {}
        parts.append(str(context.get("error", item["msg"])))
    return "; ".join(parts)
