"""The payload of `analytics-track`."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from jobkeeper.processors.fields import Extra, Id, Payload, Timestamp

JOB_TYPE = "analytics-track"


class AnalyticsTrack(Payload):
    """eventType, venueId, userId and timestamp make the idempotency key; the event is about userId or
    anonymousId."""

    eventType: Id
    timestamp: Timestamp
    userId: Id | None = None
    anonymousId: Id | None = None
    venueId: Id | None = None
    eventId: Id | None = None
    properties: Extra | None = None

    @model_validator(mode="after")
    def _whom(self) -> Self:
        if self.userId is None and self.anonymousId is None:
            raise ValueError("an event needs a userId or an anonymousId")
        return self


MODELS: dict[str, type[Payload]] = {JOB_TYPE: AnalyticsTrack}
