"""The survey domain: definitions, answer parsing and the conversation engine (no Flask, no SQL)."""
