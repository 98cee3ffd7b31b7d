"""Use cases: each takes a session, flushes, and never commits."""
