"""payment-process, refund-process and payout-process against a local server speaking Stripe's API."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, ConfigError, PermanentError, Retry, Settings, Worker
from jobkeeper.processors import configuration_problems, register_builtins
from jobkeeper.processors.payments import processor as payments
from jobkeeper.processors.payments.processor import StripeProcessors, StripeRejected, stripe_idempotency_key
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.registry import Registry
from tests.processors.money import Conn, context, make_job, rescue, wait_for_status, worker_process
from tests.processors.stripe_server import API_KEY, StripeServer, stripe_server
from tests.receivers import free_port

PAYMENT = {
    "amount": 1999,
    "currency": "USD",
    "customer": "cus_123",
    "paymentMethod": "pm_card_visa",
    "venueId": "venue-7",
    "userId": "user-3",
    "eventId": "event-42",
}


@pytest.fixture
def stripe() -> Iterator[StripeServer]:
    with stripe_server() as server:
        yield server


def stripe_settings(server: StripeServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stripe_api_key": API_KEY,
        "stripe_api_base": server.url,
        "stripe_timeout": 5.0,
        **overrides,
    }
    return Settings.from_env({}, **values)


@pytest.fixture
def processors(stripe: StripeServer) -> StripeProcessors:
    return StripeProcessors(stripe_settings(stripe))


def pay(processors: StripeProcessors, payload: Any, **job: Any) -> dict[str, Any]:
    return processors.payment_process(payload, context(make_job("payment-process", payload, **job)))


# -- payment-process ---------------------------------------------------------------------------------------


def test_a_payment_confirms_a_payment_intent_under_the_jobs_idempotency_key(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    job = make_job("payment-process", PAYMENT, key="payment:venue-7:user-3:event-42:1999")
    result = processors.payment_process(PAYMENT, context(job))

    (request,) = stripe.requests
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.idempotency_key == stripe_idempotency_key(job, "payment_intents.create")
    assert request.idempotency_key == (
        f"jobkeeper:{job.tenant_id}:payment:venue-7:user-3:event-42:1999:payment_intents.create"
    )
    form = dict(request.form)
    assert form["amount"] == "1999"
    assert form["currency"] == "usd"
    assert form["customer"] == "cus_123"
    assert form["payment_method"] == "pm_card_visa"
    assert form["confirm"] == "true"
    assert form["automatic_payment_methods[enabled]"] == "true"
    assert form["automatic_payment_methods[allow_redirects]"] == "never"
    assert request.params["metadata"] == {
        "venue_id": "venue-7",
        "user_id": "user-3",
        "event_id": "event-42",
        "jobkeeper_tenant_id": str(job.tenant_id),
        "jobkeeper_idempotency_key": "payment:venue-7:user-3:event-42:1999",
    }

    (charge,) = stripe.charges
    assert result == {
        "payment_intent": charge["id"],
        "status": "succeeded",
        "amount": 1999,
        "currency": "usd",
        "latest_charge": charge["latest_charge"],
        "replayed": False,
    }


def test_running_a_payment_job_again_replays_stripes_answer_and_charges_once(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    job = make_job("payment-process", PAYMENT)
    first = processors.payment_process(PAYMENT, context(job))
    again = processors.payment_process(PAYMENT, context(dataclasses.replace(job, attempts=2)))
    # A dead letter's replay is a new job (new id) with the same key: still the same effect.
    replay = processors.payment_process(PAYMENT, context(dataclasses.replace(job, id=uuid.uuid4())))

    assert len(stripe.charges) == 1
    assert again == replay == {**first, "replayed": True}
    assert len({r.idempotency_key for r in stripe.requests}) == 1


def test_the_idempotency_key_is_scoped_by_tenant(stripe: StripeServer, processors: StripeProcessors) -> None:
    pay(processors, PAYMENT, tenant=uuid.uuid4())
    pay(processors, PAYMENT, tenant=uuid.uuid4())
    assert len(stripe.charges) == 2


def test_a_long_or_non_ascii_key_is_hashed_into_stripes_limit() -> None:
    job = make_job("payment-process", {}, key="é" * 300)
    key = stripe_idempotency_key(job, "payment_intents.create")
    assert len(key) <= 255
    assert key.isascii()
    assert key == stripe_idempotency_key(job, "payment_intents.create")
    assert key != stripe_idempotency_key(
        dataclasses.replace(job, tenant_id=uuid.uuid4()), "payment_intents.create"
    )


def test_a_reused_key_with_other_parameters_fails_permanently(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    pay(processors, PAYMENT, key="same")
    with pytest.raises(StripeRejected, match="idempotency_error") as caught:
        pay(processors, {**PAYMENT, "amount": 2500}, key="same")
    assert caught.value.code == "idempotency_error"
    assert len(stripe.charges) == 1


def test_a_payment_without_a_method_creates_an_intent_to_confirm_later(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    payload = {"amount": 500, "currency": "eur", "venueId": "v-1", "userId": "u-1", "eventId": "e-1"}
    result = pay(processors, payload | {"orderId": "o-1"})
    form = dict(stripe.requests[0].form)
    assert "confirm" not in form
    assert "payment_method" not in form
    assert form["metadata[order_id]"] == "o-1"
    assert result["status"] == "requires_payment_method"
    assert stripe.charges == []


def test_a_payment_needing_3d_secure_completes_with_requires_action(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    result = pay(processors, {**PAYMENT, "paymentMethod": "pm_card_authenticationRequired"})
    assert result["status"] == "requires_action"


@pytest.mark.parametrize(
    ("method", "decline"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_a_declined_card_fails_permanently_with_stripes_codes(
    stripe: StripeServer, processors: StripeProcessors, method: str, decline: str
) -> None:
    payload = {**PAYMENT, "paymentMethod": method}
    with pytest.raises(StripeRejected) as caught:
        pay(processors, payload)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == "card_declined"
    assert caught.value.decline_code == decline
    assert "card_error" in str(caught.value)
    assert f"decline_code={decline}" in str(caught.value)
    # Stripe stored the decline for the key: running the job again gets it again, never a charge.
    with pytest.raises(StripeRejected):
        pay(processors, payload)
    assert stripe.charges == []


def test_an_invalid_request_fails_permanently(stripe: StripeServer, processors: StripeProcessors) -> None:
    with pytest.raises(StripeRejected, match="resource_missing"):
        pay(processors, {**PAYMENT, "customer": "nobody"})


def test_a_wrong_api_key_fails_permanently(stripe: StripeServer) -> None:
    processors = StripeProcessors(stripe_settings(stripe, stripe_api_key="sk_test_wrong_key_000000000000"))
    with pytest.raises(StripeRejected, match="AuthenticationError") as caught:
        pay(processors, PAYMENT)
    assert caught.value.code == "invalid_request_error"
    assert "sk_test_wrong" not in str(caught.value)
    assert stripe.charges == []


def test_a_missing_permission_fails_permanently(stripe: StripeServer, processors: StripeProcessors) -> None:
    stripe.fail_next(403)
    with pytest.raises(StripeRejected, match="PermissionError"):
        pay(processors, PAYMENT)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(
    stripe: StripeServer, processors: StripeProcessors, status: int
) -> None:
    stripe.fail_next(status)
    with pytest.raises(ProviderError) as caught:
        pay(processors, PAYMENT)
    assert caught.value.retryable
    assert f"HTTP {status}" in str(caught.value)
    # The next run, with the same key, charges once.
    assert pay(processors, PAYMENT)["status"] == "succeeded"
    assert len(stripe.charges) == 1


def test_retry_after_is_honoured(stripe: StripeServer, processors: StripeProcessors) -> None:
    stripe.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(Retry) as caught:
        pay(processors, PAYMENT)
    assert caught.value.after == 7.0
    assert "rate_limit" in caught.value.reason


def test_a_key_in_use_by_a_concurrent_request_is_retried(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    stripe.fail_next(409, headers={"Stripe-Should-Retry": "true"})
    with pytest.raises(ProviderError) as caught:
        pay(processors, PAYMENT)
    assert caught.value.retryable


def test_a_server_error_stripe_says_not_to_retry_fails_permanently(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    # Stripe stored this 500 for the key: every retry with the key would replay it.
    stripe.fail_next(500, headers={"Stripe-Should-Retry": "false"})
    with pytest.raises(StripeRejected, match="HTTP 500"):
        pay(processors, PAYMENT)


def test_a_refused_connection_is_a_retryable_network_error() -> None:
    settings = Settings.from_env(
        {}, stripe_api_key=API_KEY, stripe_api_base=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(ProviderError) as caught:
        pay(StripeProcessors(settings), PAYMENT)
    assert caught.value.retryable
    assert caught.value.code == "network"


def test_a_call_that_outlasts_its_timeout_is_a_retryable_network_error(stripe: StripeServer) -> None:
    processors = StripeProcessors(stripe_settings(stripe, stripe_timeout=0.3))
    with stripe.stall(), pytest.raises(ProviderError) as caught:
        pay(processors, PAYMENT)
    assert caught.value.retryable
    assert caught.value.code == "network"


def test_an_unconfigured_stripe_fails_the_job_permanently_naming_the_setting(stripe: StripeServer) -> None:
    processors = StripeProcessors(Settings.from_env({}))
    for handler in (processors.payment_process, processors.refund_process, processors.payout_process):
        with pytest.raises(NotConfiguredError, match="JOBKEEPER_STRIPE_API_KEY") as caught:
            handler(PAYMENT, context(make_job("payment-process", PAYMENT)))
        assert isinstance(caught.value, PermanentError)
    assert stripe.requests == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**PAYMENT, "amount": 19.99}, "amount"),
        ({**PAYMENT, "amount": "1999"}, "amount"),
        ({**PAYMENT, "amount": 0}, "amount"),
        ({k: v for k, v in PAYMENT.items() if k != "amount"}, "amount"),
        ({k: v for k, v in PAYMENT.items() if k != "currency"}, "currency"),
        ({**PAYMENT, "currency": "dollars"}, "currency"),
        ({**PAYMENT, "offSession": "yes"}, "offSession"),
        ([1, 2], ""),
    ],
)
def test_a_malformed_payload_fails_permanently_before_calling_stripe(
    stripe: StripeServer, processors: StripeProcessors, payload: Any, field: str
) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        pay(processors, payload)
    assert caught.value.field == field
    assert stripe.requests == []


# -- refund-process and payout-process -------------------------------------------------------------------


def test_a_refund_refunds_a_payment_intent_once(stripe: StripeServer, processors: StripeProcessors) -> None:
    intent = pay(processors, PAYMENT)["payment_intent"]
    payload = {
        "paymentIntentId": intent,
        "amount": 500,
        "reason": "requested_by_customer",
        "transactionId": "t-1",
    }
    job = make_job("refund-process", payload, key="refund:t-1")
    result = processors.refund_process(payload, context(job))
    again = processors.refund_process(payload, context(dataclasses.replace(job, attempts=2)))

    request = stripe.requests[-1]
    assert request.path == "/v1/refunds"
    assert request.idempotency_key == stripe_idempotency_key(job, "refunds.create")
    assert request.params["payment_intent"] == intent
    assert request.params["amount"] == "500"
    assert request.params["metadata"]["transaction_id"] == "t-1"
    (refund,) = stripe.of_kind("refund")
    assert result == {
        "refund": refund.object["id"],
        "status": "succeeded",
        "amount": 500,
        "currency": "usd",
        "payment_intent": intent,
        "charge": refund.object["charge"],
        "replayed": False,
    }
    assert again == {**result, "replayed": True}


def test_a_refund_by_transaction_id_names_the_charge(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    charge = pay(processors, PAYMENT)["latest_charge"]
    result = processors.refund_process(
        {"transactionId": charge}, context(make_job("refund-process", {}, key="refund:x"))
    )
    assert stripe.requests[-1].params["charge"] == charge
    assert result["amount"] == 1999


def test_refunding_an_unknown_payment_fails_permanently(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    with pytest.raises(StripeRejected, match="resource_missing"):
        processors.refund_process(
            {"paymentIntentId": "pi_unknown", "transactionId": "t-1"}, context(make_job("refund-process", {}))
        )
    with pytest.raises(InvalidPayloadError):
        processors.refund_process({"transactionId": "t-1"}, context(make_job("refund-process", {})))


PAYOUT = {
    "venueId": "venue-7",
    "period": "2026-11",
    "amount": 125000,
    "currency": "usd",
    "destination": "acct_venue7",
}


def test_a_payout_transfers_to_the_venues_connected_account(
    stripe: StripeServer, processors: StripeProcessors
) -> None:
    job = make_job("payout-process", PAYOUT, key="payout:venue-7:2026-11")
    result = processors.payout_process(PAYOUT, context(job))
    processors.payout_process(PAYOUT, context(dataclasses.replace(job, attempts=2)))

    request = stripe.requests[0]
    assert request.path == "/v1/transfers"
    assert "stripe-account" not in request.headers
    assert request.idempotency_key == stripe_idempotency_key(job, "transfers.create")
    assert request.params["destination"] == "acct_venue7"
    assert request.params["metadata"]["period"] == "2026-11"
    (transfer,) = stripe.of_kind("transfer")
    assert result == {
        "transfer": transfer.object["id"],
        "status": "transferred",
        "amount": 125000,
        "currency": "usd",
        "destination": "acct_venue7",
        "replayed": False,
    }


def test_a_payout_in_payout_mode_pays_out_the_connected_accounts_balance(stripe: StripeServer) -> None:
    processors = StripeProcessors(stripe_settings(stripe, stripe_payout_mode="payout"))
    job = make_job("payout-process", PAYOUT, key="payout:venue-7:2026-11")
    result = processors.payout_process(PAYOUT, context(job))

    (request,) = stripe.requests
    assert request.path == "/v1/payouts"
    assert request.headers["stripe-account"] == "acct_venue7"
    assert request.idempotency_key == stripe_idempotency_key(job, "payouts.create")
    (payout,) = stripe.of_kind("payout")
    assert payout.account == "acct_venue7"
    assert result["payout"] == payout.object["id"]
    assert result["status"] == "pending"


def test_a_payout_needs_a_connected_account(stripe: StripeServer, processors: StripeProcessors) -> None:
    with pytest.raises(InvalidPayloadError, match="acct_"):
        processors.payout_process(
            {**PAYOUT, "destination": "venue-7"}, context(make_job("payout-process", {}))
        )


# -- registration and configuration ----------------------------------------------------------------------


def test_builtins_are_ordinary_registrations_that_a_users_task_replaces() -> None:
    registry = Registry()

    @registry.task("payment-process", queue="money")
    def my_payment(payload: Any, ctx: Any) -> str:
        return "mine"

    register_builtins(registry)
    assert registry["payment-process"].handler is my_payment
    assert registry["refund-process"].handler.__module__ == "jobkeeper.processors.payments.processor"
    assert {"payment-process", "refund-process", "payout-process", "nft-mint"} <= set(registry.names)


def test_configuration_problems_name_the_missing_settings_of_registered_builtins() -> None:
    registry = Registry()
    payments.register(registry)
    problems = configuration_problems(registry, Settings.from_env({}))
    assert set(problems) == {"payment-process", "refund-process", "payout-process"}
    assert "JOBKEEPER_STRIPE_API_KEY" in problems["payment-process"][0]
    assert configuration_problems(registry, Settings.from_env({"JOBKEEPER_STRIPE_API_KEY": API_KEY})) == {}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JOBKEEPER_STRIPE_API_KEY", "pk_live_abc", "publishable"),
        ("JOBKEEPER_STRIPE_API_KEY", "abc", "sk_"),
        ("JOBKEEPER_STRIPE_API_BASE", "api.stripe.com", "http"),
        ("JOBKEEPER_STRIPE_PAYOUT_MODE", "transfers", "did you mean 'transfer'"),
        ("JOBKEEPER_STRIPE_TIMEOUT", "0", "> 0"),
    ],
)
def test_stripe_settings_are_validated(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)
    if variable == "JOBKEEPER_STRIPE_API_KEY":
        assert value not in str(caught.value)


# -- through a worker ---------------------------------------------------------------------------------------


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Conn]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


async def test_a_worker_stores_the_result_retries_a_server_error_and_dead_letters_a_decline(
    client: Client, db: Conn, db_url: str, settings: Settings, stripe: StripeServer
) -> None:
    registry = Registry()
    payments.register(registry, stripe_settings(stripe))
    declined = await client.enqueue(
        "payment-process", {**PAYMENT, "paymentMethod": "pm_card_chargeDeclined"}, queue="money"
    )
    async with Worker(db_url, settings=settings, registry=registry, poll_interval=0.05, shutdown_timeout=0):
        failed = await wait_for_status(db, declined.id, "failed")
        stripe.fail_next(503)  # the first call fails; the retry (same key) charges
        paid = await client.enqueue("payment-process", {**PAYMENT, "orderId": "o-2"}, queue="money")
        completed = await wait_for_status(db, paid.id, "completed")

    assert completed["attempts"] == 2
    assert completed["errors"][0]["type"] == "ProviderError"
    assert "HTTP 503" in completed["errors"][0]["message"]
    assert completed["result"]["status"] == "succeeded"
    assert completed["result"]["amount"] == 1999
    assert failed["attempts"] == 1
    (error,) = failed["errors"]
    assert error["type"] == "StripeRejected"
    assert "decline_code=generic_decline" in error["message"]
    cur = await db.execute(
        "SELECT count(*) FROM jobkeeper.dead_letter_jobs WHERE job_id = %s", (declined.id,)
    )
    assert await cur.fetchone() == (1,)
    assert len(stripe.charges) == 1


async def test_a_worker_killed_after_stripe_charged_does_not_charge_again(
    client: Client, db: Conn, db_url: str, settings: Settings, stripe: StripeServer
) -> None:
    job = await client.enqueue("payment-process", PAYMENT, queue="money")
    env = {"JOBKEEPER_STRIPE_API_KEY": API_KEY, "JOBKEEPER_STRIPE_API_BASE": stripe.url}
    stripe.hold_effects()  # Stripe records the charge, then does not answer until released

    with worker_process(db_url, env) as first:
        charged = await asyncio.to_thread(stripe.effect_recorded.wait, 30)
        assert charged, "the worker never reached Stripe"
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    stripe.release.set()  # the answer goes to a dead connection
    assert len(stripe.charges) == 1
    assert (await wait_for_status(db, job.id, "processing"))["result"] is None

    await rescue(db, db_url, settings)

    with worker_process(db_url, env) as second:
        row = await wait_for_status(db, job.id, "completed", timeout=30)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 20) == 0

    (charge,) = stripe.charges
    assert row["result"]["payment_intent"] == charge["id"]
    assert row["result"]["replayed"] is True
    creates = [r for r in stripe.requests if r.path == "/v1/payment_intents"]
    assert len(creates) == 2
    assert len({r.idempotency_key for r in creates}) == 1
