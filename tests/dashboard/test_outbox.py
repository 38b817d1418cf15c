"""The dashboard's Outbox page: the messages the development outbox kept (by the real send-email
processor under a real worker), each with its label and job link, to its own tenant only."""

from __future__ import annotations

import pytest

from jobkeeper import Client, Settings, Worker
from jobkeeper.api.auth import Role
from jobkeeper.processors.email import processor as email
from jobkeeper.processors.outbox import LABEL
from jobkeeper.worker import Registry
from tests.api.support import Conn, api_settings
from tests.dashboard.conftest import SignIn
from tests.fixtures import Tenants
from tests.worker.helpers import wait_for_status


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    return api_settings(dev_outbox=getattr(request, "param", True))


def _receipt(to: str, order_id: str) -> dict[str, object]:
    data = {"customer_name": "Ann", "order_id": order_id, "event_name": "Jazz", "items": [], "total": "$0"}
    return {"to": to, "template": "receipt", "data": data}


async def test_the_outbox_page_shows_each_tenant_its_own_messages_labelled(
    db_url: str, settings: Settings, owner: Conn, tenants: Tenants, sign_in: SignIn
) -> None:
    registry = Registry()
    email.register(registry, settings)
    async with Client(db_url, settings=settings) as client:
        mine = await client.enqueue("send-email", _receipt("ann@a.example", "o-a1"), tenant_id=tenants.a)
        theirs = await client.enqueue("send-email", _receipt("bob@b.example", "o-b1"), tenant_id=tenants.b)
        async with Worker(db_url, settings=settings, registry=registry, poll_interval=0.05):
            await wait_for_status(owner, mine.id, "completed")
            await wait_for_status(owner, theirs.id, "completed")

    page = await sign_in(Role.VENUE_ADMIN, tenants.a).get("/dashboard/outbox")
    assert page.status_code == 200
    assert LABEL in page.text
    assert 'href="/dashboard/outbox"' in page.text
    assert "ann@a.example" in page.text
    assert "Your receipt for order o-a1" in page.text
    assert f'href="/dashboard/jobs/{mine.id}"' in page.text
    assert "bob@b.example" not in page.text
    assert str(theirs.id) not in page.text

    other = await sign_in(Role.USER, tenants.b).get("/dashboard/outbox")
    assert "bob@b.example" in other.text
    assert "ann@a.example" not in other.text
    everyone = await sign_in(Role.ADMIN).get("/dashboard/outbox")  # the platform administrator
    assert "bob@b.example" in everyone.text
    assert "ann@a.example" in everyone.text


@pytest.mark.parametrize("settings", [None], indirect=True)
async def test_outside_the_development_setup_no_nav_link_and_an_empty_outbox(sign_in: SignIn) -> None:
    client = sign_in(Role.ADMIN)
    overview = await client.get("/dashboard/")
    assert 'href="/dashboard/outbox"' not in overview.text
    page = await client.get("/dashboard/outbox")
    assert page.status_code == 200
    assert "The development outbox is off" in page.text
    assert "No messages kept" in page.text
