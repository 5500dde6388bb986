from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from giftshop.timezones import local_to_utc


@pytest.mark.parametrize(
    ("day", "clock", "zone", "expected"),
    [
        # Spring forward: 02:30 does not exist; the first instant after the gap is 03:00 EDT.
        (date(2026, 3, 8), time(2, 30), "America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        (date(2026, 3, 29), time(2, 30), "Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # Fall back: 01:30 happens twice; the first (EDT) is meant.
        (date(2026, 11, 1), time(1, 30), "America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        (date(2026, 10, 25), time(2, 30), "Europe/Berlin", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # 09:00 on Christmas morning around the world: a UTC date would be a day early or late.
        (date(2026, 12, 25), time(9), "Pacific/Kiritimati", datetime(2026, 12, 24, 19, 0, tzinfo=UTC)),
        (date(2026, 12, 25), time(9), "Pacific/Pago_Pago", datetime(2026, 12, 25, 20, 0, tzinfo=UTC)),
        (date(2026, 12, 25), time(9), "Asia/Kathmandu", datetime(2026, 12, 25, 3, 15, tzinfo=UTC)),
    ],
)
def test_it_turns_a_local_time_into_the_documented_utc_instant(day, clock, zone, expected):
    assert local_to_utc(day, clock, zone) == expected


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2035, 12, 31)),
    clock=st.times(),
    zone=st.sampled_from(
        [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "America/Santiago",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "UTC",
        ]
    ),
)
def test_any_local_time_maps_to_the_chosen_local_date_or_just_after_a_gap(day, clock, zone):
    import zoneinfo

    instant = local_to_utc(day, clock.replace(microsecond=0), zone)
    assert instant.tzinfo is not None
    back = instant.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    wanted = datetime.combine(day, clock.replace(microsecond=0))
    # The chosen time itself, or (in a spring-forward gap) the first instant after it: never earlier, never
    # more than a gap's length later.
    assert back == wanted or 0 < (back - wanted).total_seconds() <= 3600
