"""The payload of `generate-report`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from jobkeeper.processors.fields import DateTime, Email, Payload

JOB_TYPE = "generate-report"
MAX_HOURS = 8784
"""366 days: the longest period a report covers."""


class GenerateReport(Payload):
    """Queue activity over a period: `from`/`to`, or the `hours` before now (default 24)."""

    from_: DateTime | None = Field(default=None, alias="from")
    to: DateTime | None = None
    hours: Annotated[float, Field(gt=0, le=MAX_HOURS)] | None = None
    bucket: Literal["hour", "day"] | None = None
    tenant: Annotated[str, Field(max_length=36)] | None = Field(
        default=None, description='A tenant id, or "all" (platform admins only); default: the job\'s tenant'
    )
    queues: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=63)]], Field(min_length=1, max_length=100)
        ]
        | None
    ) = None
    recipients: Email | Annotated[list[Email], Field(min_length=1, max_length=50)] | None = None

    @model_validator(mode="after")
    def _tenant(self) -> Self:
        if self.tenant is not None and self.tenant != "all":
            try:
                uuid.UUID(self.tenant)
            except ValueError:
                raise ValueError('tenant must be a tenant id or "all"') from None
        return self


MODELS: dict[str, type[Payload]] = {JOB_TYPE: GenerateReport}
