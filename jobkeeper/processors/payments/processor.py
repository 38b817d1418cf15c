"""Money through Stripe, with the official `stripe` SDK: `payment-process` (PaymentIntents),
`refund-process` (Refunds) and `payout-process` (Transfers to a venue's connected account, or Payouts
from it).

Exactly once (docs/concepts.md#exactly-once-effects): every call carries a Stripe `Idempotency-Key` made of
the job's tenant, its idempotency key and the operation, so a job that runs again after a crash, a timeout or
a lost answer gets Stripe's stored answer back instead of charging, refunding or paying out a second time. The
parameters of a call depend only on the payload, the tenant and the key (never on the job's id or the
attempt), because Stripe refuses a replayed key whose parameters differ.

Errors are classified once, here: network errors, timeouts, 409, 429 and 5xx may succeed later and raise
a retryable `ProviderError` (or `Retry` honouring `Retry-After`), so the queue's backoff applies; a
declined card, an invalid request, a bad key, a missing permission or a misused idempotency key can never
succeed and raise `StripeRejected`, a `PermanentError` that keeps Stripe's codes in the job's error.
Stripe's own `Stripe-Should-Retry` header, when present, overrides the status code, as the SDK does.

Payloads (`payload.py`; amounts are integers in the currency's minor unit):
- payment-process: amount, currency, and optionally customer, paymentMethod (confirmed at once),
  returnUrl, offSession, description, receiptEmail, captureMethod, metadata; venueId, userId, eventId,
  orderId and ticketId go to the PaymentIntent's metadata.
- refund-process: paymentIntentId or chargeId (or transactionId holding either), and optionally amount,
  reason, metadata.
- payout-process: amount, currency, destination (the venue's connected account, acct_…), and optionally
  transferGroup, description, metadata; venueId and period (or payoutId) go to the metadata.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe

from jobkeeper.config import Settings
from jobkeeper.errors import Retry
from jobkeeper.processors.payments.payload import JOB_TYPES, PaymentProcess, PayoutProcess, RefundProcess
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    ProviderRejectedError,
    SettingsSource,
    parse,
)
from jobkeeper.providers.errors import ProviderError
from jobkeeper.types import Job
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

QUEUE = "money"
MAX_IDEMPOTENCY_KEY = 255
MAX_RETRY_AFTER = 600.0
T = TypeVar("T")


class StripeRejected(ProviderRejectedError):
    """Stripe refused the request for good (a `PermanentError`); `code` and `decline_code` are Stripe's."""

    def __init__(self, message: str, *, code: str | None, decline_code: str | None = None) -> None:
        super().__init__("stripe", code, message)
        self.decline_code = decline_code


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_key: str
    api_base: str
    timeout: float
    payout_mode: str

    @classmethod
    def of(cls, settings: Settings, job_type: str) -> StripeConfig:
        """The settings this job type needs; `NotConfiguredError` (permanent) naming what is missing."""
        found = problems(settings).get(job_type, [])
        if found or settings.stripe_api_key is None:
            raise NotConfiguredError(job_type, found)
        return cls(
            settings.stripe_api_key,
            settings.stripe_api_base,
            settings.stripe_timeout,
            settings.stripe_payout_mode,
        )


def problems(settings: Settings) -> dict[str, list[str]]:
    """What keeps each Stripe job type from running, for the check at worker start."""
    found: list[str] = []
    if not settings.stripe_api_key:
        found.append("JOBKEEPER_STRIPE_API_KEY is not set (a Stripe secret key sk_… or restricted key rk_…)")
    elif settings.stripe_api_key.startswith("pk_"):
        found.append(
            "JOBKEEPER_STRIPE_API_KEY is a publishable key; a secret (sk_…) or restricted key is needed"
        )
    return {name: list(found) for name in JOB_TYPES}


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register the Stripe processors for every type `registry` has no handler for yet.

    Without `settings`, they are read from the environment when the first job runs.
    """
    processors = StripeProcessors(settings)
    handlers: dict[str, Callable[[Any, JobContext], dict[str, Any]]] = {
        "payment-process": processors.payment_process,
        "refund-process": processors.refund_process,
        "payout-process": processors.payout_process,
    }
    for name, handler in handlers.items():
        if name not in registry:
            registry.task(name, queue=QUEUE)(handler)


def stripe_idempotency_key(job: Job, operation: str) -> str:
    """Stripe's `Idempotency-Key` for one call of a job: the same for every run of the job (and for a replay
    of its dead letter), different per tenant and per operation. Long or non-ASCII keys are hashed."""
    effect = job.idempotency_key or f"job:{job.id}"
    key = f"jobkeeper:{job.tenant_id}:{effect}:{operation}"
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        digest = hashlib.sha256(f"{job.tenant_id}\n{effect}".encode()).hexdigest()
        key = f"jobkeeper:{job.tenant_id}:sha256:{digest}:{operation}"
    return key


class StripeProcessors:
    """The three handlers, sharing one Stripe client per configuration (the SDK's HTTP sessions are per
    thread, and sync handlers run in the worker's threads)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = SettingsSource(settings)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, float], stripe.StripeClient] = {}

    def client(self, job_type: str) -> tuple[stripe.StripeClient, StripeConfig]:
        with self._lock:
            settings = self._settings.get(job_type)
        config = StripeConfig.of(settings, job_type)
        cache_key = (config.api_key, config.api_base, config.timeout)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = stripe.StripeClient(
                    config.api_key,
                    base_addresses={"api": config.api_base},
                    # Retries belong to the queue: durable, visible in the job's history, backed off.
                    max_network_retries=0,
                    http_client=stripe.RequestsClient(timeout=config.timeout),
                )
                self._clients[cache_key] = client
        return client, config

    # -- handlers ----------------------------------------------------------------------------------------

    def payment_process(self, payload: Any, ctx: JobContext) -> dict[str, Any]:
        client, _ = self.client("payment-process")
        data = parse(PaymentProcess, payload)
        params: dict[str, Any] = {
            "amount": data.amount,
            "currency": data.currency.lower(),
            "metadata": _metadata(
                ctx.job,
                data.metadata,
                venue_id=data.venueId,
                user_id=data.userId,
                event_id=data.eventId,
                order_id=data.orderId,
                ticket_id=data.ticketId,
            ),
        }
        _copy(
            params,
            customer=data.customer or data.customerId,
            description=data.description,
            receipt_email=data.receiptEmail,
            capture_method=data.captureMethod,
        )
        payment_method = data.paymentMethod or data.paymentMethodId
        if payment_method is not None:
            # Confirm at once: the customer's saved method is charged now, or the intent asks for action.
            params["payment_method"] = payment_method
            params["confirm"] = True
            if data.returnUrl is not None:
                params["return_url"] = data.returnUrl
            else:
                params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
            if data.offSession:
                params["off_session"] = True
        options = _options(ctx.job, "payment_intents.create")
        intent = _call(lambda: client.v1.payment_intents.create(params=params, options=options))  # type: ignore[arg-type]
        ctx.logger.info("payment intent %s: %s", intent.id, intent.status)
        return {
            "payment_intent": intent.id,
            "status": intent.status,
            "amount": intent.amount,
            "currency": intent.currency,
            "latest_charge": _id_of(getattr(intent, "latest_charge", None)),
            "replayed": _replayed(intent),
        }

    def refund_process(self, payload: Any, ctx: JobContext) -> dict[str, Any]:
        client, _ = self.client("refund-process")
        data = parse(RefundProcess, payload)
        params: dict[str, Any] = {**_refund_target(data)}
        _copy(params, amount=data.amount, reason=data.reason)
        params["metadata"] = _metadata(
            ctx.job,
            data.metadata,
            transaction_id=data.transactionId,
            venue_id=data.venueId,
            user_id=data.userId,
            event_id=data.eventId,
        )
        options = _options(ctx.job, "refunds.create")
        refund = _call(lambda: client.v1.refunds.create(params=params, options=options))  # type: ignore[arg-type]
        ctx.logger.info("refund %s: %s", refund.id, refund.status)
        return {
            "refund": refund.id,
            "status": refund.status,
            "amount": refund.amount,
            "currency": refund.currency,
            "payment_intent": _id_of(getattr(refund, "payment_intent", None)),
            "charge": _id_of(getattr(refund, "charge", None)),
            "replayed": _replayed(refund),
        }

    def payout_process(self, payload: Any, ctx: JobContext) -> dict[str, Any]:
        client, config = self.client("payout-process")
        data = parse(PayoutProcess, payload)
        # The model leaves these optional (a processor of your own may not need them); Stripe does.
        destination = data.destination
        if destination is None:
            raise InvalidPayloadError(
                "destination", "must be the venue's Stripe connected account id (acct_…), got None"
            )
        if data.amount is None:
            raise InvalidPayloadError("amount", "is required: an integer amount in the currency's minor unit")
        if data.currency is None:
            raise InvalidPayloadError("currency", "is required: a three-letter ISO code such as usd")
        params: dict[str, Any] = {
            "amount": data.amount,
            "currency": data.currency.lower(),
            "metadata": _metadata(
                ctx.job, data.metadata, venue_id=data.venueId, period=data.period, payout_id=data.payoutId
            ),
        }
        _copy(params, description=data.description)
        if config.payout_mode == "payout":
            # The connected account's balance to its own bank account: a Payout made as that account.
            options = _options(ctx.job, "payouts.create")
            options["stripe_account"] = destination
            payout = _call(lambda: client.v1.payouts.create(params=params, options=options))  # type: ignore[arg-type]
            ctx.logger.info("payout %s for %s: %s", payout.id, destination, payout.status)
            return {
                "payout": payout.id,
                "status": payout.status,
                "amount": payout.amount,
                "currency": payout.currency,
                "destination": destination,
                "arrival_date": payout.arrival_date,
                "replayed": _replayed(payout),
            }
        params["destination"] = destination
        _copy(params, transfer_group=data.transferGroup)
        options = _options(ctx.job, "transfers.create")
        transfer = _call(lambda: client.v1.transfers.create(params=params, options=options))  # type: ignore[arg-type]
        ctx.logger.info("transfer %s to %s", transfer.id, destination)
        return {
            "transfer": transfer.id,
            # A Transfer has no status: it moved the funds when it was created, unless reversed since.
            "status": "reversed" if transfer.reversed else "transferred",
            "amount": transfer.amount,
            "currency": transfer.currency,
            "destination": destination,
            "replayed": _replayed(transfer),
        }


# -- calling Stripe and classifying its errors ----------------------------------------------------------


def _options(job: Job, operation: str) -> dict[str, Any]:
    return {"idempotency_key": stripe_idempotency_key(job, operation)}


def _call(request: Callable[[], T]) -> T:
    try:
        return request()
    except stripe.StripeError as exc:
        raise classify(exc) from exc


def classify(exc: stripe.StripeError) -> Exception:
    """The job outcome of a Stripe error: a retryable `ProviderError`, a `Retry` or a `StripeRejected`."""
    status = exc.http_status
    error = exc.error
    kind = error.type if error is not None else None
    code = (error.code if error is not None else None) or exc.code or kind
    decline_code = error.decline_code if error is not None else None
    message = _describe(exc, status, kind, code, decline_code)
    should_retry = _header(exc.headers, "stripe-should-retry")
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderError("stripe", message, retryable=True, code="network")
    if should_retry == "false":
        return StripeRejected(f"stripe: {message}", code=code or str(status), decline_code=decline_code)
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        after = _retry_after(exc.headers)
        if after is not None:
            return Retry(after=after, reason=f"stripe: {message}")
        return ProviderError("stripe", message, retryable=True, code=code or "rate_limit")
    if should_retry == "true" or status is None or status == 409 or status >= 500:
        after = _retry_after(exc.headers)
        if after is not None:
            return Retry(after=after, reason=f"stripe: {message}")
        return ProviderError("stripe", message, retryable=True, code=code or str(status))
    # CardError (402), InvalidRequestError (400/404), AuthenticationError (401), PermissionError (403),
    # IdempotencyError (400): the same request can never succeed.
    return StripeRejected(f"stripe: {message}", code=code or str(status), decline_code=decline_code)


def _describe(
    exc: stripe.StripeError, status: int | None, kind: str | None, code: str | None, decline: str | None
) -> str:
    parts = [type(exc).__name__]
    if status is not None:
        parts.append(f"HTTP {status}")
    if kind:
        parts.append(kind)
    if code:
        parts.append(f"code={code}")
    if decline:
        parts.append(f"decline_code={decline}")
    text = " ".join(parts)
    detail = exc.user_message or (exc.error.message if exc.error is not None else None) or str(exc)
    request_id = exc.request_id
    return f"{text}: {detail}" + (f" (request {request_id})" if request_id else "")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return str(value).strip().lower()
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from Stripe; the queue's backoff applies instead
    if not seconds >= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _replayed(obj: stripe.StripeObject) -> bool:
    response = obj.last_response
    return response is not None and _header(response.headers, "idempotent-replayed") == "true"


def _id_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return found if isinstance(found, str) else None


# -- building parameters --------------------------------------------------------------------------------


def _copy(params: dict[str, Any], **values: object) -> None:
    """The payload's optional values that are present, under Stripe's parameter names."""
    params.update({name: value for name, value in values.items() if value is not None})


def _refund_target(data: RefundProcess) -> dict[str, str]:
    if data.paymentIntentId is not None:
        return {"payment_intent": data.paymentIntentId}
    if data.chargeId is not None:
        return {"charge": data.chargeId}
    transaction = data.transactionId
    if transaction.startswith("pi_"):
        return {"payment_intent": transaction}
    if transaction.startswith(("ch_", "py_")):
        return {"charge": transaction}
    raise InvalidPayloadError(
        "paymentIntentId",
        "refund-process needs paymentIntentId (pi_…) or chargeId (ch_…), or a transactionId holding "
        f"one of them; got transactionId={transaction!r}",
    )


def _metadata(job: Job, extra: Mapping[str, str] | None, **fields: str | None) -> dict[str, str]:
    """Stripe metadata: the payload's own `metadata` object, the named payload fields, and the tenant and
    idempotency key that find the job again. The job's id is left out on purpose: a dead letter's replay
    gets a new id, and Stripe refuses a replayed Idempotency-Key whose parameters differ."""
    metadata = {key[:40]: value for key, value in (extra or {}).items()}
    metadata |= {name: value[:500] for name, value in fields.items() if value is not None}
    metadata["jobkeeper_tenant_id"] = str(job.tenant_id)
    if job.idempotency_key:
        metadata["jobkeeper_idempotency_key"] = job.idempotency_key[:500]
    else:
        metadata["jobkeeper_job_id"] = str(job.id)
    return metadata
