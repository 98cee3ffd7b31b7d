"""The fake Twilio for messaging tests: a real HTTP server speaking Twilio's Messages API."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

FAKE_TWILIO_FILE = Path(__file__).resolve().parents[1] / "fake_twilio.py"


def _load_fake_twilio() -> ModuleType:
    """tests/fake_twilio.py by path: with --import-mode=importlib, tests is not a package."""
    module = sys.modules.get("fake_twilio")
    if module is None:
        spec = importlib.util.spec_from_file_location("fake_twilio", FAKE_TWILIO_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fake_twilio"] = module  # before running it, as dataclasses look it up
        spec.loader.exec_module(module)
    return module


FakeTwilio = _load_fake_twilio().FakeTwilio


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fresh fake Twilio on a free port of 127.0.0.1, stopped after the test."""
    with FakeTwilio() as fake:
        yield fake
