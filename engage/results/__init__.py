"""Results for the policy team: counts, disclosure control and downloads (no Flask, no SQL)."""
