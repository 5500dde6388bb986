"""Local times chosen by people, turned into UTC instants (stored) and back (shown).

Rules, written down because clocks jump twice a year: a local time that does not exist (it falls in a
spring-forward gap) moves to the first instant after the gap; a local time that happens twice (fall back) means
its first occurrence.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError

# The zones a person may pick in a form, sorted by name ("localtime" and "Factory" are not places).
ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


def validate_time_zone(value):
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. Europe/Berlin).")


def local_to_utc(day, clock, zone_name):
    """The UTC instant of `day` at `clock` in the IANA zone `zone_name`."""
    zone = zoneinfo.ZoneInfo(zone_name)
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)  # exists (the first occurrence, when it happens twice)
    # In a gap: fold=0 reads it with the offset from before the gap, which lands after the gap; step back to
    # the first instant after the gap (gaps are whole minutes long).
    instant = first.astimezone(UTC)
    while (instant - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None) > naive:
        instant -= timedelta(minutes=1)
    return instant.replace(second=0, microsecond=0)
