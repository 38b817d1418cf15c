"""The payload of `send-email`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from jobkeeper.processors.fields import Email, Extra, Id, Payload, Sender

JOB_TYPE = "send-email"
MAX_RECIPIENTS = 50


class SendEmail(Payload):
    """A template rendered with `data` (or `variables`); `to` is one address or a list of up to 50."""

    to: Email | Annotated[list[Email], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    template: Id
    data: Extra | None = None
    variables: Extra | None = None
    subject: Annotated[str, Field(min_length=1, max_length=998)] | None = None
    from_: Sender | None = Field(default=None, alias="from")
    replyTo: Email | None = None
    userId: Id | None = None
    venueId: Id | None = None
    eventId: Id | None = None
    orderId: Id | None = None
    metadata: Extra | None = None


MODELS: dict[str, type[Payload]] = {JOB_TYPE: SendEmail}
