"""The payload of `send-push`: a Web Push subscription or an FCM target, and the notification."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from jobkeeper.processors.fields import Extra, Id, Payload, Text, Url

JOB_TYPE = "send-push"
MAX_TTL = 28 * 86400


class PushSubscription(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    endpoint: Url
    keys: dict[Literal["p256dh", "auth"], Annotated[str, Field(min_length=1, max_length=200)]]

    @model_validator(mode="after")
    def _both_keys(self) -> Self:
        if set(self.keys) != {"p256dh", "auth"}:
            raise ValueError("keys must hold p256dh and auth")
        return self


class SendPush(Payload):
    """Web Push: `subscription` (a browser's PushSubscription); FCM: one of token, topic, condition."""

    subscription: PushSubscription | None = None
    token: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    topic: Annotated[str, Field(min_length=1, max_length=900)] | None = None
    condition: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    body: Text | None = None
    data: Extra | None = None
    image: Url | None = None
    ttl: Annotated[StrictInt, Field(ge=0, le=MAX_TTL)] | None = None
    urgency: Literal["very-low", "low", "normal", "high"] | None = None
    android: Extra | None = None
    apns: Extra | None = None
    webpush: Extra | None = None
    userId: Id | None = None
    metadata: Extra | None = None

    @model_validator(mode="after")
    def _target_and_content(self) -> Self:
        if self.subscription is not None:
            if self.token is not None or self.condition is not None:
                raise ValueError("give a Web Push subscription or an FCM target, not both")
            if self.topic is not None and len(self.topic) > 32:
                raise ValueError("a Web Push topic has at most 32 characters")
        else:
            targets = [t for t in (self.token, self.topic, self.condition) if t is not None]
            if len(targets) != 1:
                raise ValueError("a push needs a subscription, or exactly one of token, topic and condition")
        if self.title is None and self.body is None and not self.data:
            raise ValueError("a push needs a title, a body or data")
        return self


MODELS: dict[str, type[Payload]] = {JOB_TYPE: SendPush}
