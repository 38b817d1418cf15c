"""Cron expressions in a time zone: validation and the instants they fire at.

Five fields (minute hour day month weekday) or six with seconds first (second minute hour day month
weekday). Fields are matched on the zone's wall clock; the wall-clock times are then mapped to instants
with these rules at daylight-saving changes:
- a time that does not exist (the clock jumps forward over it) fires at the same wall-clock offset after
  the jump (02:30 on a spring-forward night fires at 03:30), as Vixie cron does;
- a time that occurs twice (the clock falls back) fires once, at its first occurrence.
Instants are deduplicated, so a slot never fires twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jobkeeper.errors import InvalidJobError

MAX_SLOTS = 10_000
DST_LOOKBACK = timedelta(hours=3)
"""Longest daylight-saving jump handled: a skipped wall-clock time fires after the jump."""
INTERVAL_SLOTS = 500


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJobError(
            "timezone", f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


def validate(expression: str, timezone: str = "UTC") -> None:
    """Raise `InvalidJobError` naming the problem when the expression or zone is not valid."""
    parse_zone(timezone)
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise InvalidJobError(
            "cron", f"must have 5 or 6 fields (seconds first), got {len(fields)}: {expression!r}"
        )
    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        raise InvalidJobError("cron", f"is not a valid cron expression: {expression!r}")


def _iterator(expression: str, start_local: datetime) -> croniter:
    six = len(expression.split()) == 6
    return croniter(expression, start_local, second_at_beginning=six, ret_type=datetime)


def _to_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time (PEP 495, fold=0): an ambiguous time maps to its first
    occurrence; a skipped time takes the offset from before the jump, which lands after the jump by the
    jump's size (02:30 → 03:30)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def fires_after(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Instants (UTC) strictly after `after`, in order, without duplicates."""
    zone = parse_zone(timezone)
    # Start a little before, in wall-clock time, so a skipped slot mapped forward is not missed; only
    # when the offset changed in that span, since an every-second expression would walk 10,800 slots.
    here = after.astimezone(zone)
    earlier = (after - DST_LOOKBACK).astimezone(zone)
    start_local = (earlier if earlier.utcoffset() != here.utcoffset() else here).replace(tzinfo=None)
    iterator = _iterator(expression, start_local)
    last: datetime | None = None
    for _ in range(MAX_SLOTS * 10):
        local: datetime = iterator.get_next(datetime)
        instant = _to_instant(local, zone)
        if instant <= after or (last is not None and instant <= last):
            continue
        last = instant
        yield instant


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    return next(fires_after(expression, timezone, after))


def fires_between(
    expression: str, timezone: str, after: datetime, until: datetime, limit: int = MAX_SLOTS
) -> list[datetime]:
    """Instants in (after, until], at most `limit` of the latest ones' worth from the start."""
    slots: list[datetime] = []
    for instant in fires_after(expression, timezone, after):
        if instant > until or len(slots) >= limit:
            break
        slots.append(instant)
    return slots


def shortest_interval(
    expression: str, timezone: str, after: datetime, *, below: float = 0.0, slots: int = INTERVAL_SLOTS
) -> float:
    """The shortest gap, in seconds, between consecutive slots among the next `slots` after `after`,
    stopping early at a gap under `below`.

    A sample, not a proof; but cron fields repeat, so a short gap between two values of a field shows up
    within the first cycles of the next coarser field, well inside 500 slots."""
    shortest = float("inf")
    previous: datetime | None = None
    for count, instant in enumerate(fires_after(expression, timezone, after)):
        if previous is not None:
            shortest = min(shortest, (instant - previous).total_seconds())
        if count >= slots or shortest < below:
            break
        previous = instant
    return shortest


def check_interval(expression: str, timezone: str, after: datetime, minimum: float) -> None:
    """Raise `InvalidJobError` on `cron` when the expression fires less than `minimum` seconds apart."""
    if minimum <= 0 or (minimum <= 60 and len(expression.split()) == 5):
        return  # five fields never fire less than a minute apart
    gap = shortest_interval(expression, timezone, after, below=minimum)
    if gap < minimum:
        raise InvalidJobError(
            "cron",
            f"fires {gap:g} s apart, more often than the minimum interval of {minimum:g} s "
            f"(JOBKEEPER_SCHEDULE_MIN_INTERVAL): {expression!r}",
        )
