"""The development outbox: what Django's console email backend or Rails' `:test` delivery are to their
users. With `JOBKEEPER_DEV_OUTBOX` on, a send-email, send-sms or send-push job whose provider has none of
its settings completes with the message it would have sent as its result, marked "not delivered", instead
of failing. The dashboard's Outbox page lists those jobs (docs/processors.md#development-outbox).

The message is kept in the job's own result, not in a table of its own: it is as durable as the job, the
jobs' row-level security keeps it to its tenant, it links to its job by being it, and retention prunes it
with the job. A provider with some of its settings is not replaced: its jobs fail with the setting that
is missing, as without the outbox, so a half-done configuration never looks like a working one.

Never on by default: unset, only `jobkeeper up` with the embedded database turns it on (for its own
children); `up` refuses it with DATABASE_URL set; and a worker that runs with it says so at start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError

if TYPE_CHECKING:  # the API and the CLI import this module without the worker's and processors' imports
    from jobkeeper.worker.context import JobContext

log = logging.getLogger(__name__)

LABEL = "development outbox — not delivered"
TRANSPORT = "development-outbox"
JOB_TYPES = ("send-email", "send-sms", "send-push")
VARIABLE = "JOBKEEPER_DEV_OUTBOX"


def enabled(settings: Settings) -> bool:
    return settings.dev_outbox is True


def keep(
    ctx: JobContext, channel: str, to: list[str], subject: str | None, body: str, **extra: Any
) -> dict[str, Any]:
    """The job's result for a message kept in the outbox (and one log line saying it was not sent)."""
    ctx.logger.info("%s: %s to %s", LABEL, channel, ", ".join(to))
    return {
        "delivered": False,
        "transport": TRANSPORT,
        "note": LABEL,
        "channel": channel,
        "to": to,
        "subject": subject,
        "body": body,
        **extra,
    }


def up_environment(settings: Settings) -> dict[str, str]:
    """What `jobkeeper up` adds to its children's environment: the outbox on in the embedded setup
    (DATABASE_URL unset) unless set off. With DATABASE_URL set it is refused: a real database means real
    users, whose messages must never silently stop at an outbox."""
    if settings.database_url is not None:
        if enabled(settings):
            raise ConfigError(
                f"{VARIABLE}=true is only for the embedded development setup (DATABASE_URL unset); with "
                "DATABASE_URL set, configure the providers (docs/processors.md) or unset it"
            )
        return {}
    if settings.dev_outbox is False:
        return {}
    return {VARIABLE: "true", "JOBKEEPER_DEV_OUTBOX_BY_UP": "true"}


def announce(settings: Settings, problems: dict[str, list[str]]) -> dict[str, list[str]]:
    """At a worker's start: one warning when the outbox is on, and the configuration problems left once
    the outbox stands in for the providers that have no settings at all."""
    if not enabled(settings):
        return problems
    # Under `up`, its banner has said so already: a newcomer sees it once.
    log.log(
        logging.INFO if settings.dev_outbox_by_up else logging.WARNING,
        "%s=true: send-email, send-sms and send-push jobs without a provider go to the %s "
        "(dashboard: Outbox); never use it for real users",
        VARIABLE,
        LABEL,
    )
    from jobkeeper.processors.email import processor as email
    from jobkeeper.processors.push import processor as push
    from jobkeeper.processors.sms import processor as sms

    replaced = {
        "send-email": email.unconfigured(settings),
        "send-sms": sms.unconfigured(settings),
        "send-push": push.unconfigured(settings),
    }
    return {job_type: found for job_type, found in problems.items() if not replaced.get(job_type)}
