"""Browser tests: the app served by uvicorn on 127.0.0.1 (a free port, a background thread) against the
test's database, driven by Debian's chromium through Playwright (never `playwright install`; `make
browsers` installs chromium). Set JOBKEEPER_SCREENSHOTS=1 to write the screenshots to docs/screenshots/."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from jobkeeper import Settings, Worker
from jobkeeper.api.auth import Role
from jobkeeper.server import create_app
from jobkeeper.worker import Registry
from tests.dashboard.support import COOKIE, token
from tests.fixtures import Tenants
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent.parent

if not CHROMIUM.exists():
    pytest.skip("chromium is not installed: run `make browsers`", allow_module_level=True)


@pytest.fixture
def server(db_url: str, settings: Settings) -> Iterator[str]:
    """The app on a free loopback port. The socket listens before uvicorn starts, so the first request
    simply waits in the backlog until the app is up: no polling for readiness."""
    app = create_app(settings, db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws="none",
        http="h11",
        server_header=False,
        log_config=None,  # uvicorn's dictConfig would detach its loggers from the root for later tests
    )
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, kwargs={"sockets": [sock]}, name="dashboard-e2e", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    uvi.should_exit = True
    thread.join(timeout=15)
    sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(
    browser: Browser, server: str, settings: Settings, tenants: Tenants
) -> AsyncIterator[OpenPage]:
    """A page signed in as `role` of `tenant` (the session cookie set directly), or not signed in."""
    contexts: list[BrowserContext] = []

    async def make(
        role: Role | None = Role.ADMIN,
        tenant: uuid.UUID | None = None,
        *,
        width: int = 1280,
        height: int = 860,
    ) -> Page:
        context = await browser.new_context(base_url=server, viewport={"width": width, "height": height})
        contexts.append(context)
        if role is not None:
            session_token = token(settings, role, tenant or tenants.a)
            await context.add_cookies(
                [
                    {
                        "name": COOKIE,
                        "value": session_token,
                        "domain": "127.0.0.1",
                        "path": "/dashboard",
                        "httpOnly": True,
                        "sameSite": "Strict",
                    }
                ]
            )
        page = await context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture
async def worker(db_url: str, settings: Settings) -> AsyncIterator[Callable[[Registry], Awaitable[Worker]]]:
    """Start a real worker on the background queue with the given handlers; stopped at teardown."""
    started: list[Worker] = []

    async def start(registry: Registry) -> Worker:
        running = Worker(
            db_url,
            settings=settings,
            registry=registry,
            queues=["background"],
            concurrency=4,
            poll_interval=0.05,
            shutdown_timeout=0.0,
        )
        await running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(timeout=0)


class Shots:
    """Screenshots: into docs/screenshots/ with JOBKEEPER_SCREENSHOTS=1, else into the test's tmp dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def take(self, page: Page, name: str, **options: Any) -> Path:
        path = self.directory / f"{name}.png"
        await page.screenshot(path=str(path), **options)
        return path


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    if os.environ.get("JOBKEEPER_SCREENSHOTS") == "1":
        directory = ROOT / "docs" / "screenshots"
        directory.mkdir(parents=True, exist_ok=True)
        return Shots(directory)
    return Shots(tmp_path)
