"""The development outbox (processors.outbox) under a real Worker: with JOBKEEPER_DEV_OUTBOX on and no
provider, send-email, send-sms and send-push complete with the rendered message as a result labelled not
delivered; without it, or with a provider half configured, they fail naming the missing setting."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, ConfigError, Settings
from jobkeeper.processors import configuration_problems, register_builtins
from jobkeeper.processors.email import processor as email
from jobkeeper.processors.outbox import LABEL, TRANSPORT, announce, up_environment
from jobkeeper.processors.push import processor as push
from jobkeeper.processors.sms import processor as sms
from jobkeeper.worker import Registry
from tests.processors.conftest import WorkerFactory
from tests.processors.helpers import settings
from tests.worker.helpers import dead_letter, wait_for_status

Conn = psycopg.AsyncConnection[Any]
RECEIPT = {
    "to": "ann@example.com",
    "template": "receipt",
    "data": {
        "customer_name": "Ann",
        "order_id": "o-42",
        "event_name": "Jazz night",
        "items": [{"quantity": 2, "description": "Seat", "price": "$20.00"}],
        "total": "$40.00",
    },
}
REMINDER = {
    "to": "+14155550100",
    "template": "event-reminder",
    "data": {"event_name": "Jazz night", "venue_name": "The Blue Room", "starts_at": "at 7pm"},
}


def _registry(current: Settings) -> Registry:
    registry = Registry()
    for module in (email, sms, push):
        module.register(registry, current)
    return registry


async def test_messages_go_to_the_outbox_rendered_and_labelled_not_delivered(
    client: Client, db: Conn, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    mail = await client.enqueue("send-email", RECEIPT)
    text = await client.enqueue("send-sms", REMINDER)
    note = await client.enqueue("send-push", {"token": "device-1", "title": "Doors open", "body": "Now"})
    caplog.set_level(logging.INFO)
    async with make_worker(_registry(settings(dev_outbox=True))):
        mailed = await wait_for_status(db, mail.id, "completed")
        texted = await wait_for_status(db, text.id, "completed")
        pushed = await wait_for_status(db, note.id, "completed")

    result = mailed["result"]
    assert (result["delivered"], result["transport"], result["note"]) == (False, TRANSPORT, LABEL)
    assert result["to"] == ["ann@example.com"]
    assert result["subject"] == "Your receipt for order o-42"
    assert "Hi Ann," in result["body"]
    assert "2 x Seat: $20.00" in result["body"]
    assert "Jazz night" in result["html"]
    assert texted["result"]["note"] == LABEL
    assert texted["result"]["body"] == "Reminder: Jazz night at The Blue Room starts at 7pm."
    assert pushed["result"]["note"] == LABEL
    assert (pushed["result"]["to"], pushed["result"]["subject"]) == (["token:device-1"], "Doors open")
    logged = [r.getMessage() for r in caplog.records if LABEL in r.getMessage()]
    assert any("email to ann@example.com" in line for line in logged)
    assert any("sms to +14155550100" in line for line in logged)


async def test_an_invalid_message_still_fails_with_the_outbox(
    client: Client, db: Conn, make_worker: WorkerFactory
) -> None:
    missing = await client.enqueue("send-email", {"to": "ann@example.com", "template": "receipt"})
    async with make_worker(_registry(settings(dev_outbox=True))):
        row = await wait_for_status(db, missing.id, "failed")
    assert "customer_name" in row["last_error"]  # the template's variables are checked as for real


async def test_without_the_setting_unconfigured_providers_fail_naming_the_setting(
    client: Client, db: Conn, make_worker: WorkerFactory
) -> None:
    mail = await client.enqueue("send-email", RECEIPT)
    text = await client.enqueue("send-sms", REMINDER)
    note = await client.enqueue("send-push", {"token": "device-1", "title": "Doors open"})
    async with make_worker(_registry(settings())):
        mailed = await wait_for_status(db, mail.id, "failed")
        texted = await wait_for_status(db, text.id, "failed")
        pushed = await wait_for_status(db, note.id, "failed")
    assert "send-email is not configured: JOBKEEPER_EMAIL_TRANSPORT is not set" in mailed["last_error"]
    assert "JOBKEEPER_TWILIO_ACCOUNT_SID is not set" in texted["last_error"]
    assert "JOBKEEPER_PUSH_TRANSPORT is not set" in pushed["last_error"]
    assert await dead_letter(db, mail.id) is not None


async def test_a_half_configured_provider_is_never_replaced_by_the_outbox(
    client: Client, db: Conn, make_worker: WorkerFactory
) -> None:
    mail = await client.enqueue("send-email", RECEIPT)
    text = await client.enqueue("send-sms", REMINDER)
    current = settings(dev_outbox=True, smtp_host="127.0.0.1", twilio_from="+14155550199")
    async with make_worker(_registry(current)):
        mailed = await wait_for_status(db, mail.id, "failed")
        texted = await wait_for_status(db, text.id, "failed")
    assert "JOBKEEPER_EMAIL_FROM is not set" in mailed["last_error"]
    assert "JOBKEEPER_TWILIO_AUTH_TOKEN is not set" in texted["last_error"]


def test_up_turns_it_on_only_for_the_embedded_database() -> None:
    assert up_environment(settings()) == {
        "JOBKEEPER_DEV_OUTBOX": "true",
        "JOBKEEPER_DEV_OUTBOX_BY_UP": "true",
    }
    assert up_environment(settings(dev_outbox=False)) == {}
    real = "postgresql://app@db.example.com/app"
    assert up_environment(settings(database_url=real)) == {}
    with pytest.raises(ConfigError, match="only for the embedded development setup"):
        up_environment(settings(database_url=real, dev_outbox=True))


def test_a_worker_with_the_outbox_warns_once_and_reports_what_it_does_not_replace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    current = settings(dev_outbox=True)
    registry = Registry()
    register_builtins(registry, current)
    found = configuration_problems(registry, current)
    with caplog.at_level(logging.WARNING, logger="jobkeeper.processors.outbox"):
        left = announce(current, found)
    assert {"send-email", "send-sms", "send-push"} <= set(found)
    assert not {"send-email", "send-sms", "send-push"} & set(left)
    assert "payment-process" in left  # payments are never faked
    (line,) = [r.getMessage() for r in caplog.records]
    assert "JOBKEEPER_DEV_OUTBOX=true" in line
    assert LABEL in line
    assert announce(settings(), found) == found
