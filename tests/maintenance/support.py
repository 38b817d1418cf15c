"""Helpers of the maintenance tests."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool


async def sql(pool: AsyncConnectionPool[Any], statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement on the pool; its rows, if it returns any."""
    async with pool.connection() as conn:
        cur = await conn.execute(statement, params)
        return await cur.fetchall() if cur.description else []
