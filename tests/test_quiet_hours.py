"""Quiet hours in the contact's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engage.services.quiet_hours import next_allowed, timezone_for

QUIET = (21, 8)


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # 15:00 UTC = 10:00 in New York: allowed at once.
        ("2026-12-01T15:00", "America/New_York", "2026-12-01T15:00"),
        # 03:00 UTC = 22:00 in New York: the next 08:00 there (13:00 UTC).
        ("2026-12-02T03:00", "America/New_York", "2026-12-02T13:00"),
        # 03:00 UTC = 19:00 in Los Angeles: allowed.
        ("2026-12-02T03:00", "America/Los_Angeles", "2026-12-02T03:00"),
        # 12:59 UTC = 07:59 in New York: wait one minute.
        ("2026-12-01T12:59", "America/New_York", "2026-12-01T13:00"),
        # Exactly 21:00 local is quiet.
        ("2026-12-02T02:00", "America/New_York", "2026-12-02T13:00"),
        # Summer time: 08:00 EDT is 12:00 UTC.
        ("2026-07-01T02:00", "America/New_York", "2026-07-01T12:00"),
        # Unknown zone: allowed only when it is day on both coasts (08:00 PT = 16:00 UTC).
        ("2026-12-01T14:00", None, "2026-12-01T16:00"),
        ("2026-12-01T20:00", None, "2026-12-01T20:00"),
        # 02:30 UTC = 21:30 ET: quiet in the east already.
        ("2026-12-02T02:30", None, "2026-12-02T16:00"),
    ],
)
def test_next_allowed_send_time(utc, zone, expected):
    moment = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert next_allowed(moment, zone, QUIET) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "phone", "zone"),
    [
        ("FL", "+12065550100", "America/New_York"),  # the profile state wins
        ("ca", None, "America/Los_Angeles"),
        (None, "+12065550100", "America/Los_Angeles"),  # Seattle area code
        (None, "+13055550100", "America/New_York"),  # Miami area code
        (None, "+5215512345678", None),  # Mexico spans zones: unknown
        ("ZZ", None, None),
    ],
)
def test_time_zone_from_state_or_area_code(state, phone, zone):
    assert timezone_for(state, phone) == zone
