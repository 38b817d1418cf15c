"""The payload of each built-in job type (seed 004 §2.3, §6.2), one pydantic model each: the one definition
that every way in applies (the API, `Client` and `SyncClient`, the CLI, schedule creation) and that the
OpenAPI schema publishes as `Payload_<Model>`.

The models only validate: the payload is stored exactly as sent (no keyword stripping, no normalisation),
and parameterised SQL makes any string harmless. Field names are the camelCase names the idempotency rules
(`jobkeeper.idempotency`) read. Built-in types reject unknown fields; every type, built-in or not, rejects
keys beginning with `__` at any depth and nesting deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import difflib
import email.utils
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from jobkeeper.errors import InvalidPayloadError

MAX_DEPTH = 32
MAX_AMOUNT = 1_000_000

# ISO 4217 active codes (2024), including funds codes that payment providers accept.
_ISO_4217 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR "
    "MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB "
    "RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD "
    "TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG "
    "XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL "
)
CURRENCIES = frozenset(_ISO_4217.split())

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(_BASE58)}
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def _currency(value: str) -> str:
    if value.upper() not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR)")
    return value


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    return value


def _sender(value: str) -> str:
    """`Name <address>` or a bare address."""
    address = email.utils.parseaddr(value)[1]
    if not address:
        raise ValueError(f"{value!r} is not an email address or `Name <address>`")
    _email(address)
    return value


def _phone(value: str) -> str:
    if not _E164.match(value):
        raise ValueError("must be an E.164 phone number: + then country code and number, digits only")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number for its country code")
    return value


def base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + body


def _solana_address(value: str) -> str:
    if not 32 <= len(value) <= 44:
        raise ValueError("must be a base58 Solana address (32 to 44 characters)")
    try:
        decoded = base58_decode(value)
    except ValueError as exc:
        raise ValueError(f"must be a base58 Solana address: {exc}") from None
    if len(decoded) != 32:
        raise ValueError("must be a base58 Solana address (a 32-byte public key)")
    return value


def _date_time(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2026-11-23T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("must include a time zone (e.g. Z or +01:00)")
    return value


def _timestamp(value: str | float) -> str | float:
    if isinstance(value, str):
        return _date_time(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be seconds (or milliseconds) since the epoch, or an ISO 8601 date-time")
    return value


Id = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Amount = Annotated[
    StrictInt, Field(gt=0, le=MAX_AMOUNT, description="In minor units (cents), 1 to 1,000,000")
]
Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
Email = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_email)]
Sender = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_sender)]
Phone = Annotated[str, Field(min_length=3, max_length=16), AfterValidator(_phone)]
SolanaAddress = Annotated[str, AfterValidator(_solana_address)]
Timestamp = Annotated[str | StrictInt | StrictFloat, AfterValidator(_timestamp)]
Url = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
Extra = dict[str, Any]
StringMap = dict[str, Annotated[str, Field(max_length=500)]]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PaymentProcess(_Payload):
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


class RefundProcess(_Payload):
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


class NftMint(_Payload):
    """One ticket minted to the buyer's Solana wallet; eventId with seatId or ticketId is the key."""

    eventId: Id
    seatId: Id | None = None
    ticketId: Id | None = None
    wallet: SolanaAddress
    userId: Id | None = None
    venueId: Id | None = None
    orderId: Id | None = None
    metadataUri: Url | None = None
    metadata: Extra | None = None

    @model_validator(mode="after")
    def _seat_or_ticket(self) -> Self:
        if self.seatId is None and self.ticketId is None:
            raise ValueError("an NFT mint needs a seatId or a ticketId")
        return self


class PayoutProcess(_Payload):
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


class SendEmail(_Payload):
    """A template rendered with `data` (or `variables`); `to` is one address or a list of up to 50."""

    to: Email | Annotated[list[Email], Field(min_length=1, max_length=50)]
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


class SendSms(_Payload):
    """Exactly one of `body` and `template` (rendered with `data` or `variables`)."""

    to: Phone
    body: Annotated[str, Field(min_length=1, max_length=1600)] | None = None
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


class PushSubscription(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    endpoint: Url
    keys: dict[Literal["p256dh", "auth"], Annotated[str, Field(min_length=1, max_length=200)]]

    @model_validator(mode="after")
    def _both_keys(self) -> Self:
        if set(self.keys) != {"p256dh", "auth"}:
            raise ValueError("keys must hold p256dh and auth")
        return self


class SendPush(_Payload):
    """Web Push: `subscription` (a browser's PushSubscription); FCM: one of token, topic, condition."""

    subscription: PushSubscription | None = None
    token: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    topic: Annotated[str, Field(min_length=1, max_length=900)] | None = None
    condition: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    body: Text | None = None
    data: Extra | None = None
    image: Url | None = None
    ttl: Annotated[StrictInt, Field(ge=0, le=2_419_200)] | None = None
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


class AnalyticsTrack(_Payload):
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


Horizon = Annotated[float, Field(ge=3600, le=100 * 365 * 86400, description="Seconds, at least one hour")]
Count = Annotated[StrictInt, Field(ge=1, le=100_000)]


class CleanupOldData(_Payload):
    """The leader's retention, on demand, over every tenant's history (platform admins only)."""

    finished_jobs: Horizon | None = None
    queue_metrics: Horizon | None = None
    acknowledged_alerts: Horizon | None = None
    batch: Count | None = None
    max_batches: Count | None = None


class GenerateReport(_Payload):
    """Queue activity over a period: `from`/`to`, or the `hours` before now (default 24)."""

    from_: Annotated[str, AfterValidator(_date_time)] | None = Field(default=None, alias="from")
    to: Annotated[str, AfterValidator(_date_time)] | None = None
    hours: Annotated[float, Field(gt=0, le=8784)] | None = None
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


MODELS: dict[str, type[_Payload]] = {
    "payment-process": PaymentProcess,
    "refund-process": RefundProcess,
    "nft-mint": NftMint,
    "payout-process": PayoutProcess,
    "send-email": SendEmail,
    "send-sms": SendSms,
    "send-push": SendPush,
    "analytics-track": AnalyticsTrack,
    "cleanup-old-data": CleanupOldData,
    "generate-report": GenerateReport,
}


BUILTIN_TYPES = frozenset(MODELS)


@dataclass(frozen=True, slots=True)
class PayloadProblem:
    """One thing wrong with a payload: where in it (keys and list indexes) and why."""

    loc: tuple[int | str, ...]
    reason: str


def path(loc: Sequence[int | str]) -> str:
    """`("data", "to", 0)` → `data.to[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_keys(data: Any) -> list[PayloadProblem]:
    """Keys beginning with `__` anywhere, and nesting deeper than MAX_DEPTH (walked without recursion)."""
    problems: list[PayloadProblem] = []
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            problems.append(PayloadProblem(loc, f"is nested deeper than {MAX_DEPTH} levels"))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.startswith("__"):
                    problems.append(PayloadProblem((*loc, key), "keys beginning with __ are not accepted"))
                else:
                    stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, index)) for index, item in enumerate(value))
    return problems


def payload_problems(job_type: str, data: Any) -> list[PayloadProblem]:
    """Every problem with `data` (a dict) for a job of `job_type`; empty when it is valid."""
    problems = check_keys(data)
    if problems:
        return problems
    model = MODELS.get(job_type)
    if model is None:
        return []
    try:
        model.model_validate(data, strict=True)
    except ValidationError as exc:
        return [_problem(error, model) for error in exc.errors(include_url=False)]
    return []


def check_payload(job_type: str, data: Any, field: str = "payload") -> None:
    """Raise `InvalidPayloadError` naming every problem of `data`, each at `field.<path>`."""
    problems = payload_problems(job_type, data)
    if problems:
        raise InvalidPayloadError([(path((field, *p.loc)), p.reason) for p in problems])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _problem(error: Any, model: type[_Payload]) -> PayloadProblem:
    # Tagged unions and model validators add their own names to the location; they mean nothing to the
    # caller. pydantic prefixes custom errors with "Value error, "; the reason reads better without it.
    loc = tuple(
        part for part in error.get("loc", ()) if not (isinstance(part, str) and part.startswith("function-"))
    )
    reason = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if reason != "Extra inputs are not permitted" or not loc:
        return PayloadProblem(loc, reason)
    # Unknown fields name the accepted one they probably meant (snake_case → camelCase, typos).
    key = str(loc[-1])
    names = [info.alias or name for name, info in model.model_fields.items()]
    guess = (
        _camel(key) if _camel(key) in names else next(iter(difflib.get_close_matches(key, names, n=1)), None)
    )
    hint = f"; did you mean {guess!r}?" if guess else f"; accepted: {', '.join(names)}"
    return PayloadProblem(loc, f"is not a field of this job type{hint}")
