from __future__ import annotations

import pytest

from engage.survey.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Segments,
    count_segments,
    is_gsm7,
    to_gsm7,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments("GSM-7", 0, 0)),
        ("Hola", Segments("GSM-7", 4, 1)),
        ("¿Le pagan a tiempo? 1 Sí 2 No", Segments("UCS-2", 29, 1)),
        ("¿Cuántas horas?", Segments("UCS-2", 15, 1)),
        ("Ñandú", Segments("UCS-2", 5, 1)),
        ("Niño, ¡Hola!", Segments("GSM-7", 12, 1)),
        ("€", Segments("GSM-7", 2, 1)),
        ("{}", Segments("GSM-7", 4, 1)),
        ("a" * 160, Segments("GSM-7", 160, 1)),
        ("a" * 161, Segments("GSM-7", 161, 2)),
        ("a" * 306, Segments("GSM-7", 306, 2)),
        ("a" * 307, Segments("GSM-7", 307, 3)),
        ("€" * 80, Segments("GSM-7", 160, 1)),
        ("a" * 159 + "€", Segments("GSM-7", 161, 2)),
        ("á" * 70, Segments("UCS-2", 70, 1)),
        ("á" * 71, Segments("UCS-2", 71, 2)),
        ("á" * 134, Segments("UCS-2", 134, 2)),
        ("á" * 135, Segments("UCS-2", 135, 3)),
        ("😀", Segments("UCS-2", 2, 1)),
        ("😀" * 35, Segments("UCS-2", 70, 1)),
        ("😀" * 36, Segments("UCS-2", 72, 2)),
        ("a" * 69 + "`", Segments("UCS-2", 70, 1)),
        ("“quoted”", Segments("UCS-2", 8, 1)),
        ("ç", Segments("UCS-2", 1, 1)),
        ("Ç", Segments("GSM-7", 1, 1)),
    ],
)
def test_count_segments(text: str, expected: Segments) -> None:
    assert count_segments(text) == expected


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 306 septets would fit two parts of 153, but the € cannot straddle them.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == Segments("GSM-7", 306, 3)


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    # 134 code units would fit two parts of 67, but the emoji cannot straddle them.
    text = "a" * 66 + "😀" + "a" * 66
    assert count_segments(text) == Segments("UCS-2", 134, 3)


def test_the_alphabet_matches_the_gsm_table() -> None:
    assert len(GSM7_BASIC) == 127
    assert GSM7_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)


@pytest.mark.parametrize("ch", ["é", "ñ", "Ñ", "ü", "¿", "¡", "\n", "@", "£", "Δ", "à"])
def test_spanish_and_gsm_specials_stay_gsm7(ch: str) -> None:
    assert is_gsm7(ch)


@pytest.mark.parametrize("ch", ["á", "í", "ó", "ú", "Á", "ç", "–", "…", "\u00a0", "\t"])
def test_common_surprises_force_ucs2(ch: str) -> None:
    assert not is_gsm7(ch)
    assert count_segments("Hola " + ch).encoding == "UCS-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("¿Participa? 1=Sí 2=No", "¿Participa? 1=Si 2=No"),
        ("teléfono, línea, policía, según", "teléfono, linea, policia, segun"),
        ("ÈD pou èd, Kreyòl", "ED pou èd, Kreyòl"),
        ("ça “va” — ok…", 'ca "va" - ok...'),
        ("Ñandú ü", "Ñandu ü"),
        ("hola 😀", "hola 😀"),
    ],
)
def test_to_gsm7_drops_only_the_accents_gsm7_lacks(text: str, expected: str) -> None:
    assert to_gsm7(text) == expected
    if "😀" not in text:
        assert is_gsm7(to_gsm7(text))
