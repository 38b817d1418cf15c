"""Slack-compatible incoming webhooks: POST {"text": …, "blocks": […]} as JSON."""

from __future__ import annotations

from typing import Any

import httpx

from jobkeeper.providers.errors import check_response, transport_error


async def post_json(
    url: str, body: dict[str, Any], *, timeout: float = 10.0, provider: str = "webhook"
) -> None:
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc) from exc
    check_response(provider, response)
