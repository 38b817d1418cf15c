"""The payload of `send-sms`."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from jobkeeper.processors.fields import Extra, Id, Payload, Phone

JOB_TYPE = "send-sms"
MAX_BODY = 1600
"""Twilio's limit for one message (it splits longer text into segments up to this size)."""


class SendSms(Payload):
    """Exactly one of `body` and `template` (rendered with `data` or `variables`)."""

    to: Phone
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY)] | None = None
    template: Id | None = None
    data: Extra | None = None
    variables: Extra | None = None
    userId: Id | None = None
    metadata: Extra | None = None

    @model_validator(mode="after")
    def _template_or_body(self) -> Self:
        if (self.template is None) == (self.body is None):
            raise ValueError("an SMS needs either a body or a template (with data), not both")
        return self


MODELS: dict[str, type[Payload]] = {JOB_TYPE: SendSms}
