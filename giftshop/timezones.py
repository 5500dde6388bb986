"""Local times chosen by people, turned into UTC instants (stored) and back (shown).

Rules, written down because clocks jump twice a year: a local time that does not exist (it falls in a
spring-forward gap) moves to the first instant after the gap; a local time that happens twice (fall back) means
its first occurrence.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext, pgettext

# The areas of canonical zone names: what is left when a system lacks zone.tab (see _canonical_zones).
AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


def _canonical_zones():
    """The canonical IANA zones (one per place, as tzdata's zone.tab lists them by country) and UTC: not the
    backward-compatible links that zoneinfo.available_timezones() also names (GB-Eire, W-SU, Zulu, Etc/GMT+3,
    US/Pacific). zone.tab, not zone1970.tab: the latter folds places into one zone (Europe/Amsterdam into
    Europe/Brussels), and a person looks for their own city."""
    known = zoneinfo.available_timezones()
    for root in zoneinfo.TZPATH:
        tab = Path(root) / "zone.tab"
        if tab.is_file():
            lines = tab.read_text(encoding="utf-8").splitlines()
            names = {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
            return sorted((names & known) | {"UTC"})
    # No zone.tab (tzdata from the Python package only): Area/Place names, which leaves out the links' old forms.
    return sorted({name for name in known if name.split("/")[0] in AREAS} | {"UTC"})


# The zones a person may pick in a form, sorted by name.
ZONES = _canonical_zones()
# Offered first in the pickers (after the browser's guess, which the page's script puts on top).
COMMON_ZONES = [
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Santiago",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
]
# What the day and time of a delivery look like ("Wed 9 Dec, 18:30"), and with the year when it is not this one.
# In English; each catalogue words its own (a "date format" message, e.g. "D, j. M, H:i" in German), and Django's
# own catalogues name the days and months.
DAY_AND_TIME = "D j M, H:i"
DAY_YEAR_AND_TIME = "D j M Y, H:i"


def _day_and_time_format(this_year):
    """The active language's format (Django's date format characters) for DAY_AND_TIME or DAY_YEAR_AND_TIME."""
    if this_year:
        return pgettext("date format: a day and time this year (Django's date format characters)", "D j M, H:i")
    return pgettext("date format: a day and time in another year (Django's date format characters)", "D j M Y, H:i")


def zone_label(name):
    """A zone as a picker names it: "America/Los Angeles" (what a person types to find it in the list)."""
    return name.replace("_", " ")


def zone_choices(extra=()):
    """The pickers' choices: the common zones (and `extra`, such as the person's own zone) in a "Common" group,
    then every other canonical zone, each value once."""
    common = list(dict.fromkeys([*(name for name in extra if name), *COMMON_ZONES]))
    others = [name for name in ZONES if name not in common]
    return [
        # Translators: the group of the most used time zones in a picker.
        (gettext("Common"), [(name, zone_label(name)) for name in common]),
        (gettext("All time zones"), [(name, zone_label(name)) for name in others]),
    ]


def place_name(zone_name):
    """The place a zone is named for: "Los Angeles" for America/Los_Angeles; "UTC" stays."""
    return zone_name.rsplit("/", 1)[-1].replace("_", " ")


def in_words(when, zone_name, now=None):
    """`when` as a person reads it, in the zone they chose: "Wed 9 Dec, 18:30 Los Angeles time" (the year is
    added when it is not the current one there); "" for no time."""
    if when is None:
        return ""
    zone = zoneinfo.ZoneInfo(zone_name)
    local = when.astimezone(zone)
    this_year = (now or timezone.now()).astimezone(zone).year == local.year
    shown = format_date(local, _day_and_time_format(this_year))
    if zone_name == "UTC":
        return gettext("%(when)s UTC") % {"when": shown}
    # Translators: a time and the place its zone is named for: "Wed 9 Dec, 18:30 Los Angeles time".
    return gettext("%(when)s %(place)s time") % {"when": shown, "place": place_name(zone_name)}


def in_words_elsewhere(when, zone_name, other_zone_name, now=None):
    """`when` in `other_zone_name`'s words when its clock there differs from `zone_name`'s; "" when the other zone
    is unknown or shows the same time."""
    if when is None or not other_zone_name or other_zone_name == zone_name:
        return ""
    here = when.astimezone(zoneinfo.ZoneInfo(zone_name)).replace(tzinfo=None)
    there = when.astimezone(zoneinfo.ZoneInfo(other_zone_name)).replace(tzinfo=None)
    return "" if here == there else in_words(when, other_zone_name, now)


def validate_time_zone(value):
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(
            gettext("%(zone)s is not a known IANA time zone (e.g. Europe/Berlin).") % {"zone": repr(value)}
        )


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
