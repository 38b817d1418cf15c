from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from jobkeeper import InvalidJobError
from jobkeeper.cron import fires_between, next_fire, validate

NY = ZoneInfo("America/New_York")


def _local(instants: list[datetime]) -> list[str]:
    return [i.astimezone(NY).strftime("%m-%d %H:%M:%S%z") for i in instants]


def test_a_time_skipped_by_spring_forward_fires_after_the_jump() -> None:
    fires = fires_between(
        "30 2 * * *",
        "America/New_York",
        datetime(2027, 3, 13, 12, tzinfo=UTC),
        datetime(2027, 3, 15, 12, tzinfo=UTC),
    )
    assert _local(fires) == ["03-14 03:30:00-0400", "03-15 02:30:00-0400"]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    fires = fires_between(
        "30 1 * * *",
        "America/New_York",
        datetime(2027, 11, 6, 12, tzinfo=UTC),
        datetime(2027, 11, 8, 12, tzinfo=UTC),
    )
    assert _local(fires) == ["11-07 01:30:00-0400", "11-08 01:30:00-0500"]
    hourly = fires_between(
        "0 * * * *",
        "America/New_York",
        datetime(2027, 11, 7, 4, tzinfo=UTC),
        datetime(2027, 11, 7, 8, tzinfo=UTC),
    )
    # 00:00, 01:00 (first), 02:00, 03:00 local: the repeated 01:00 is not run twice.
    assert _local(hourly) == ["11-07 01:00:00-0400", "11-07 02:00:00-0500", "11-07 03:00:00-0500"]
    assert len(set(hourly)) == len(hourly)


def test_six_fields_put_seconds_first() -> None:
    after = datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert next_fire("15 * * * * *", "UTC", after) == datetime(2030, 1, 1, 0, 0, 15, tzinfo=UTC)
    assert next_fire("0 */5 * * * *", "UTC", after) == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)


def test_zones_are_honoured() -> None:
    after = datetime(2030, 6, 1, 0, 0, tzinfo=UTC)
    assert next_fire("0 9 * * *", "Europe/Paris", after) == datetime(2030, 6, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "zone", "reason"),
    [
        ("* * * *", "UTC", "must have 5 or 6 fields"),
        ("61 * * * *", "UTC", "is not a valid cron expression"),
        ("* * * * * * *", "UTC", "must have 5 or 6 fields"),
        ("0 9 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_invalid_expressions_and_zones(expression: str, zone: str, reason: str) -> None:
    with pytest.raises(InvalidJobError, match=reason):
        validate(expression, zone)
