"""The payloads of `payment-process`, `refund-process` and `payout-process` (the Stripe processor).

Field names are camelCase, as the idempotency rules (`jobkeeper.idempotency`) read them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from jobkeeper.processors.fields import Amount, Currency, Email, Id, Payload, StringMap, Text, Url

JOB_TYPES = ("payment-process", "refund-process", "payout-process")


class PaymentProcess(Payload):
    """Charged through Stripe (PaymentIntent). venueId, userId, eventId and amount make the idempotency
    key (with orderId when given: two identical purchases of one order are one payment)."""

    amount: Amount
    currency: Currency
    venueId: Id
    userId: Id
    eventId: Id
    orderId: Id | None = None
    ticketId: Id | None = None
    customer: Id | None = None
    customerId: Id | None = None
    paymentMethod: Id | None = None
    paymentMethodId: Id | None = None
    returnUrl: Url | None = None
    offSession: bool | None = None
    captureMethod: Literal["automatic", "automatic_async", "manual"] | None = None
    receiptEmail: Email | None = None
    description: Text | None = None
    metadata: StringMap | None = None


class RefundProcess(Payload):
    """transactionId is the refunded payment (a PaymentIntent pi_… or a charge ch_…) and the idempotency
    key; paymentIntentId or chargeId may name it explicitly. Without amount, the whole payment."""

    transactionId: Id
    paymentIntentId: Id | None = None
    chargeId: Id | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    venueId: Id | None = None
    userId: Id | None = None
    eventId: Id | None = None
    orderId: Id | None = None
    metadata: StringMap | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.paymentIntentId is not None and self.chargeId is not None:
            raise ValueError("give paymentIntentId or chargeId, not both")
        return self


class PayoutProcess(Payload):
    """A venue's payout for a period (or a payout id): the key. The built-in Stripe processor also needs
    amount, currency and destination (the venue's connected account, acct_…)."""

    venueId: Id
    period: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    payoutId: Id | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    destination: Annotated[str, Field(pattern=r"^acct_[A-Za-z0-9]{1,100}$")] | None = None
    transferGroup: Id | None = None
    description: Text | None = None
    metadata: StringMap | None = None

    @model_validator(mode="after")
    def _period_or_payout(self) -> Self:
        if self.period is None and self.payoutId is None:
            raise ValueError("a payout needs a period or a payoutId")
        return self


MODELS: dict[str, type[Payload]] = {
    "payment-process": PaymentProcess,
    "refund-process": RefundProcess,
    "payout-process": PayoutProcess,
}
