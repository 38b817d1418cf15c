"""Fixtures of the maintenance tests: a pool like the leader's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from jobkeeper import Settings
from jobkeeper.store.pool import async_pool


@pytest.fixture
async def pool(db_url: str, settings: Settings) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = async_pool(settings, db_url)
    await p.open()
    yield p
    await p.close()
