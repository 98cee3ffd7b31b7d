"""Worker text at intake: control characters out, everything a person writes kept."""

from __future__ import annotations

import pytest

from engage.intake import strip_control_characters

CONTROLS = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n"]


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_c0_and_c1_control_character_is_removed(control):
    assert strip_control_characters(f"{control}no{control}{control} pagan{control}") == "no pagan"


@pytest.mark.parametrize(
    "text",
    [
        "línea uno\nlínea dos\tfin",
        "¿Cuánto? $500, 10 horas — ñandú",
        "Kreyòl: mwen pa jwenn lajan m",
        "emoji 👷🏽‍♀️ and zero-width joiner",
        "\u00a0non-breaking space, \u2028 line separator, \ufeff BOM",
    ],
)
def test_what_a_person_writes_is_kept(text):
    assert strip_control_characters(text) == text
