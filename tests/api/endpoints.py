"""Every endpoint of the API, with the role it needs and one invalid request for it.

`test_every_route_is_listed` keeps this list and the app's routes equal, so the per-endpoint tests (auth
failures, roles, invalid input) cover every endpoint there is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jobkeeper.api.auth import Role

P = "/api/v1/queue"
SOME_ID = uuid.UUID("0b5d8d0e-4a8e-4f43-9d7c-7a3c4a0b1c2d")

PUBLIC = None


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    """The route's path template as the app declares it."""
    role: Role | None
    """Least role needed: USER (any token), VENUE_ADMIN (admin or venue_admin), ADMIN; None: public."""
    body: Any = None
    invalid: tuple[str, Any, str] | None = None
    """(path with query, body, the field the 422 names)."""

    @property
    def path(self) -> str:
        return (
            self.template.replace("{job_id}", str(SOME_ID))
            .replace("{dead_letter_id}", str(SOME_ID))
            .replace("{schedule_id}", str(SOME_ID))
            .replace("{alert_id}", str(SOME_ID))
            .replace("{queue}", "money")
            .replace("{name}", "stripe")
        )

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


SCHEDULE = {"name": "nightly", "cron": "0 3 * * *", "type": "generate-report", "data": {"hours": 24}}

ENDPOINTS = [
    Endpoint("GET", "/health", PUBLIC),
    Endpoint("GET", "/", PUBLIC),
    Endpoint("GET", "/metrics", PUBLIC),
    Endpoint("GET", P + "/", PUBLIC),
    Endpoint("GET", P + "/health", PUBLIC),
    Endpoint("GET", P + "/health/ready", PUBLIC),
    Endpoint("GET", P + "/metrics/prometheus", PUBLIC),
    Endpoint(
        "POST",
        P + "/jobs",
        Role.USER,
        {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}},
        invalid=(P + "/jobs", {"type": "", "data": {}}, "body.type"),
    ),
    Endpoint(
        "POST",
        P + "/jobs/batch",
        Role.VENUE_ADMIN,
        {"jobs": [{"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}]},
        invalid=(P + "/jobs/batch", {"jobs": []}, "body.jobs"),
    ),
    Endpoint("GET", P + "/jobs", Role.USER, invalid=(P + "/jobs?limit=0", None, "query.limit")),
    Endpoint("GET", P + "/jobs/{job_id}", Role.USER, invalid=(P + "/jobs/nope", None, "path.job_id")),
    Endpoint(
        "POST",
        P + "/jobs/{job_id}/retry",
        Role.VENUE_ADMIN,
        invalid=(P + "/jobs/7/retry", None, "path.job_id"),
    ),
    Endpoint("DELETE", P + "/jobs/{job_id}", Role.VENUE_ADMIN, invalid=(P + "/jobs/x", None, "path.job_id")),
    Endpoint("GET", P + "/queues", Role.USER),
    Endpoint(
        "GET",
        P + "/queues/{queue}/stats",
        Role.USER,
        invalid=(P + "/queues/Not%20A%20Queue/stats", None, "path.queue"),
    ),
    Endpoint(
        "POST",
        P + "/queues/{queue}/pause",
        Role.ADMIN,
        invalid=(P + "/queues/-bad/pause", None, "path.queue"),
    ),
    Endpoint(
        "POST",
        P + "/queues/{queue}/resume",
        Role.ADMIN,
        invalid=(P + "/queues/-bad/resume", None, "path.queue"),
    ),
    Endpoint(
        "DELETE",
        P + "/queues/{queue}/clean",
        Role.ADMIN,
        invalid=(P + "/queues/money/clean?grace=-1", None, "query.grace"),
    ),
    Endpoint("GET", P + "/types", Role.ADMIN),
    Endpoint(
        "POST",
        P + "/types",
        Role.ADMIN,
        {"name": "video-transcode"},
        invalid=(P + "/types", {"name": ""}, "body.name"),
    ),
    Endpoint("GET", P + "/cache/stats", Role.ADMIN),
    Endpoint("DELETE", P + "/cache/flush", Role.ADMIN),
    Endpoint(
        "GET",
        P + "/dead-letters",
        Role.USER,
        invalid=(P + "/dead-letters?replayed=maybe", None, "query.replayed"),
    ),
    Endpoint(
        "GET",
        P + "/dead-letters/{dead_letter_id}",
        Role.USER,
        invalid=(P + "/dead-letters/1", None, "path.dead_letter_id"),
    ),
    Endpoint(
        "POST",
        P + "/dead-letters/{dead_letter_id}/replay",
        Role.VENUE_ADMIN,
        invalid=(P + "/dead-letters/1/replay", None, "path.dead_letter_id"),
    ),
    Endpoint(
        "POST",
        P + "/dead-letters/replay",
        Role.VENUE_ADMIN,
        {},
        invalid=(P + "/dead-letters/replay", {"limit": 0}, "body.limit"),
    ),
    Endpoint(
        "POST",
        P + "/dead-letters/purge",
        Role.VENUE_ADMIN,
        {"queue": "money"},
        invalid=(P + "/dead-letters/purge", {}, "body.all"),
    ),
    Endpoint(
        "DELETE",
        P + "/dead-letters/{dead_letter_id}",
        Role.VENUE_ADMIN,
        invalid=(P + "/dead-letters/1", None, "path.dead_letter_id"),
    ),
    Endpoint(
        "POST",
        P + "/schedules",
        Role.VENUE_ADMIN,
        SCHEDULE,
        invalid=(P + "/schedules", SCHEDULE | {"cron": "61 * * * *"}, "body.cron"),
    ),
    Endpoint("GET", P + "/schedules", Role.USER, invalid=(P + "/schedules?limit=501", None, "query.limit")),
    Endpoint(
        "GET",
        P + "/schedules/{schedule_id}",
        Role.USER,
        invalid=(P + "/schedules/x", None, "path.schedule_id"),
    ),
    Endpoint(
        "PATCH",
        P + "/schedules/{schedule_id}",
        Role.VENUE_ADMIN,
        {"active": False},
        invalid=(P + f"/schedules/{SOME_ID}", {"priority": 11}, "body.priority"),
    ),
    Endpoint(
        "POST",
        P + "/schedules/{schedule_id}/pause",
        Role.VENUE_ADMIN,
        invalid=(P + "/schedules/x/pause", None, "path.schedule_id"),
    ),
    Endpoint(
        "POST",
        P + "/schedules/{schedule_id}/resume",
        Role.VENUE_ADMIN,
        invalid=(P + "/schedules/x/resume", None, "path.schedule_id"),
    ),
    Endpoint(
        "DELETE",
        P + "/schedules/{schedule_id}",
        Role.VENUE_ADMIN,
        invalid=(P + "/schedules/x", None, "path.schedule_id"),
    ),
    Endpoint("GET", P + "/alerts", Role.USER, invalid=(P + "/alerts?severity=loud", None, "query.severity")),
    Endpoint("GET", P + "/alerts/{alert_id}", Role.USER, invalid=(P + "/alerts/x", None, "path.alert_id")),
    Endpoint(
        "POST",
        P + "/alerts/{alert_id}/acknowledge",
        Role.VENUE_ADMIN,
        invalid=(P + "/alerts/x/acknowledge", None, "path.alert_id"),
    ),
    Endpoint("GET", P + "/limiters", Role.USER),
    Endpoint(
        "PATCH",
        P + "/limiters/{name}",
        Role.ADMIN,
        body={"rate_per_second": 120},
        invalid=(P + "/limiters/stripe", {"burst": 0}, "body.burst"),
    ),
    Endpoint(
        "GET",
        P + "/queues/{queue}/metrics",
        Role.USER,
        invalid=(P + "/queues/money/metrics?hours=0", None, "query.hours"),
    ),
]

PROTECTED = [e for e in ENDPOINTS if e.role is not None]
