from __future__ import annotations

import builtins

import pytest

from engage.survey.expression import MAX_DEPTH, Expression, ExpressionError, parse


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("paid_on_time == 'no'", {"paid_on_time"}),
        ('state != "CA"', {"state"}),
        ("hours >= 40", {"hours"}),
        ("hours < -1", {"hours"}),
        ("state in ['CA', 'TX', 3]", {"state"}),
        ("state not in []", {"state"}),
        ("'late_pay' in problems", {"problems"}),
        ("a == 1 and (b == 2 or not c <= 3)", {"a", "b", "c"}),
        ("  _private_1 == 'x'  ", {"_private_1"}),
        ("a == b", {"a", "b"}),
        ("'x' == 'x'", set()),
    ],
)
def test_parse_accepts_the_grammar(source: str, names: set[str]) -> None:
    assert parse(source).names() == frozenset(names)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "empty condition"),
        ("   ", "empty condition"),
        ("a == 1)", "unexpected ')' at column 7"),
        ("(a == 1", "unexpected end of condition: expected ')'"),
        ("a ==", "unexpected end of condition"),
        ("a", "expected a comparison after 'a' at column 1, got end of condition"),
        ("a = 1", "unexpected '=' at column 3: use '=='"),
        ("a == 'open", "unterminated string starting at column 6"),
        ("a < b < c", "unexpected '<' at column 7"),
        ("a == 1.5", "only whole numbers"),
        ("a == 1st", "invalid name or number at column 6"),
        ("State == 'CA'", "unexpected 'S' at column 1"),
        ("état == 'x'", "unexpected 'é' at column 1"),
        ("a in 'abc'", "unexpected \"'abc'\" at column 6: expected a list"),
        ("[1] == a", "a list at column 1 can only follow 'in'"),
        ("a in [b]", "expected a quoted text or a number in the list"),
        ("a in [1 2]", "expected ',' or ']'"),
        ("a == 1 and", "unexpected end of condition"),
        ("a == 1 && b == 2", "unexpected '&' at column 8"),
        ("not", "unexpected end of condition"),
        ("a == 1 a == 2", "unexpected 'a' at column 8"),
    ],
)
def test_parse_reports_where_the_condition_breaks(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as excinfo:
        parse(source)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').system('ls') == 0",
        "os.system('ls')",
        "a.__class__ == 1",
        "exec('1') == 1",
        "lambda: 1",
        "[x for x in y]",
        "a == 1; import os",
        "True",
        "None == a",
        "a == f'{b}'",
        "a == 1 if b else 2",
        "a[0] == 1",
    ],
)
def test_python_is_rejected(source: str) -> None:
    with pytest.raises(ExpressionError):
        parse(source)


def test_expression_error_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)


def test_parse_never_hands_text_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the condition was handed to Python")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    expression = parse("a == 1 and b in ['x', 'y']")
    assert expression.evaluate({"a": 1, "b": "y"}) is True


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("(" * (MAX_DEPTH + 1) + "a == 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("not " * (MAX_DEPTH + 1) + "a == 1")


def test_long_flat_conditions_are_fine() -> None:
    expression = parse(" or ".join(f"a == {i}" for i in range(500)))
    assert expression.evaluate({"a": 499}) is True


def test_str_gives_back_the_source() -> None:
    source = "paid_on_time == 'no'  and hours > 40"
    assert str(parse(source)) == source
    assert parse(source).source == source


def test_expressions_compare_by_meaning_not_spacing() -> None:
    assert parse("a == 1") == parse("a==1")
    assert parse("a == 1") != parse("a == 2")
    assert isinstance(hash(parse("a in ['x']")), int)


def test_strings_may_escape_their_quote() -> None:
    assert parse(r"a == 'it\'s'").evaluate({"a": "it's"}) is True
    assert parse('a == "say \\"hi\\""').evaluate({"a": 'say "hi"'}) is True


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        # choices and yes/no
        ("paid == 'no'", {"paid": "no"}, True),
        ("paid == 'no'", {"paid": "yes"}, False),
        ("paid != 'no'", {"paid": "yes"}, True),
        ("state in ['CA', 'TX']", {"state": "TX"}, True),
        ("state in ['CA', 'TX']", {"state": "WA"}, False),
        ("state not in ['CA', 'TX']", {"state": "WA"}, True),
        ("state not in ['CA', 'TX']", {"state": "CA"}, False),
        # multi answers
        ("'late' in problems", {"problems": ["late", "unpaid"]}, True),
        ("'late' in problems", {"problems": ["unpaid"]}, False),
        ("'late' not in problems", {"problems": ["unpaid"]}, True),
        ("'late' in problems", {"problems": []}, False),
        ("problems == problems", {"problems": ["a", "b"]}, True),
        ("a == b", {"a": ["x", "y"], "b": ["y", "x"]}, True),
        ("problems == 'late'", {"problems": ["late"]}, False),
        ("problems in ['late']", {"problems": ["late"]}, False),
        # numbers
        ("hours > 40", {"hours": 41}, True),
        ("hours > 40", {"hours": 40}, False),
        ("hours >= 40", {"hours": 40}, True),
        ("hours < 40", {"hours": 39.5}, True),
        ("hours <= -1", {"hours": -1}, True),
        ("hours == 40", {"hours": 40.0}, True),
        ("hours in [10, 20]", {"hours": 20}, True),
        # text against numbers: numeric when the text is a number, else false
        ("kids == 2", {"kids": "2"}, True),
        ("kids > 1", {"kids": " 2 "}, True),
        ("kids == 2", {"kids": "two"}, False),
        ("kids > 1", {"kids": "two"}, False),
        ("kids < 1", {"kids": "two"}, False),
        ("kids != 2", {"kids": "two"}, True),
        ("choice in [1, 2]", {"choice": "2"}, True),
        ("choice == '2'", {"choice": 2}, True),
        # ordering of things that have no order is false, never an error
        ("problems > 1", {"problems": ["a"]}, False),
        ("problems < 'a'", {"problems": ["a"]}, False),
        ("flag > 1", {"flag": True}, False),
        ("name < 'b'", {"name": "a"}, True),
        ("name > 'b'", {"name": "a"}, False),
        ("n == 1", {"n": True}, False),
        # precedence: not > and > or
        ("a == 1 or b == 1 and c == 1", {"a": 1, "b": 0, "c": 0}, True),
        ("(a == 1 or b == 1) and c == 1", {"a": 1, "b": 0, "c": 0}, False),
        ("not a == 1 and b == 1", {"a": 0, "b": 1}, True),
        ("not (a == 1 and b == 1)", {"a": 1, "b": 0}, True),
        ("not not a == 1", {"a": 1}, True),
        # literals alone
        ("'x' == 'x'", {}, True),
        ("1 < 2", {}, True),
    ],
)
def test_evaluate(source: str, values: dict[str, object], expected: bool) -> None:
    assert parse(source).evaluate(values) is expected


@pytest.mark.parametrize(
    "source",
    [
        "x == 'a'",
        "x != 'a'",
        "x < 1",
        "x <= 1",
        "x > 1",
        "x >= 1",
        "x in ['a']",
        "x not in ['a']",
        "'a' in x",
        "'a' not in x",
        "x == x",
        "x != y",
    ],
)
@pytest.mark.parametrize("values", [{}, {"x": None, "y": None}], ids=["missing", "none"])
def test_every_comparison_with_null_is_false(source: str, values: dict[str, object]) -> None:
    assert parse(source).evaluate(values) is False


def test_not_of_a_null_comparison_is_true() -> None:
    assert parse("not (x == 'a')").evaluate({"x": None}) is True


def test_null_inside_a_multi_answer_matches_nothing() -> None:
    assert parse("'a' not in x").evaluate({"x": [None, "b"]}) is True


def test_compared_literals_lists_equality_and_membership_only() -> None:
    expression = parse("a == 'x' and 'y' in b and c in ['p', 1] and d > 3 and e != f")
    assert expression.compared_literals() == [("a", "x"), ("b", "y"), ("c", "p"), ("c", 1)]


def test_parse_returns_an_expression() -> None:
    assert isinstance(parse("a == 1"), Expression)
