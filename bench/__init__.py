"""Benchmarks that print each figure as a ratio against a ceiling measured in the same run."""
