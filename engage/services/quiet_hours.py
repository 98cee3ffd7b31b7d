"""Quiet hours: no bulk message between 21:00 and 08:00 in the contact's time zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

# The main time zone of each state where farmworkers are surveyed (a state spanning two zones
# takes the one most of its farm work is in).
STATE_TIMEZONES = {
    "AL": "America/Chicago", "AZ": "America/Phoenix", "AR": "America/Chicago",
    "CA": "America/Los_Angeles", "CO": "America/Denver", "CT": "America/New_York",
    "DE": "America/New_York", "FL": "America/New_York", "GA": "America/New_York",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago", "KS": "America/Chicago", "KY": "America/New_York",
    "LA": "America/Chicago", "ME": "America/New_York", "MD": "America/New_York",
    "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver",
    "NE": "America/Chicago", "NV": "America/Los_Angeles", "NH": "America/New_York",
    "NJ": "America/New_York", "NM": "America/Denver", "NY": "America/New_York",
    "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York",
    "RI": "America/New_York", "SC": "America/New_York", "SD": "America/Chicago",
    "TN": "America/Chicago", "TX": "America/Chicago", "UT": "America/Denver",
    "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
    "HI": "Pacific/Honolulu", "AK": "America/Anchorage", "PR": "America/Puerto_Rico",
}  # fmt: skip
# When nothing tells the zone, a send must be outside quiet hours in all of these.
UNKNOWN_ZONES = ("America/New_York", "America/Los_Angeles")


def timezone_for(state: str | None, e164: str | None) -> str | None:
    """The contact's time zone: from the profile state, else the phone's area code."""
    if state and state.upper() in STATE_TIMEZONES:
        return STATE_TIMEZONES[state.upper()]
    if e164:
        try:
            zones = phone_timezones.time_zones_for_number(phonenumbers.parse(e164))
        except phonenumbers.NumberParseException:
            return None
        known = [z for z in zones if z != "Etc/Unknown"]
        if len(known) == 1:
            return known[0]
    return None


def _next_allowed_in(moment: datetime, zone: str, quiet: tuple[int, int]) -> datetime:
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo(UNKNOWN_ZONES[0])
    local = moment.astimezone(tz)
    start, end = quiet
    hour = local.hour
    in_quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not in_quiet:
        return moment
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=tz).astimezone(moment.tzinfo)


def next_allowed(moment: datetime, zone: str | None, quiet: tuple[int, int]) -> datetime:
    """The earliest time at or after `moment` that is outside quiet hours for this zone."""
    if zone:
        return _next_allowed_in(moment, zone, quiet)
    # Unknown zone: outside quiet hours everywhere it might be.
    result = moment
    for _ in range(3):
        later = max(_next_allowed_in(result, z, quiet) for z in UNKNOWN_ZONES)
        if later == result:
            return result
        result = later
    return result
