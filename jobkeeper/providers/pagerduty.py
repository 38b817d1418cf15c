"""PagerDuty Events API v2: POST /v2/enqueue with a routing key (answers 202)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from jobkeeper.providers.errors import check_response, transport_error

DEFAULT_BASE_URL = "https://events.pagerduty.com"
SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}


@dataclass(frozen=True, slots=True)
class PagerDutyConfig:
    routing_key: str
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0


async def trigger(
    config: PagerDutyConfig,
    *,
    summary: str,
    severity: str,
    dedup_key: str,
    source: str,
    details: dict[str, Any],
) -> str:
    """Trigger (or re-trigger, by dedup key) an incident; returns PagerDuty's dedup key."""
    event = {
        "routing_key": config.routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary[:1024],
            "source": source,
            "severity": SEVERITIES.get(severity, "error"),
            "custom_details": details,
        },
    }
    try:
        async with httpx.AsyncClient(timeout=config.timeout) as http:
            response = await http.post(f"{config.base_url.rstrip('/')}/v2/enqueue", json=event)
    except httpx.HTTPError as exc:
        raise transport_error("pagerduty", exc) from exc
    check_response("pagerduty", response)
    key: str = response.json().get("dedup_key", dedup_key)
    return key
