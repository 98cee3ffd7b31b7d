"""The `when` language: a tiny, parsed (never evaluated as Python) condition on earlier answers.

Grammar (precedence: `not` binds tighter than `and`, which binds tighter than `or`)::

    condition  := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                | operand ("in" | "not" "in") (NAME | list)
    operand    := NAME | STRING | INTEGER
    list       := "[" [(STRING | INTEGER) ("," (STRING | INTEGER))* [","]] "]"

Names are earlier question ids or profile keys. At evaluation a name's value is what was stored
for it: a str (choice value, `yes`/`no`, text), a number, a list of str (a `multi` answer), or
None when unanswered, skipped or missed.

Null semantics: every comparison with a null operand is false, whatever the operator, so
`x != 'a'` and `x not in ['a']` are false when x is null, while `not (x == 'a')` is true.
For non-null operands `!=` is the negation of `==` and `not in` the negation of `in`.
Comparisons never raise: incompatible types (a list with `<`, text that is not a number with a
number) compare false.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard, TypeVar

from engage.survey.phrases import Phrase

# Deep enough for any real survey, shallow enough that nesting can never exhaust the stack.
MAX_DEPTH = 32

_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_RESERVED = frozenset({"and", "or", "not", "in"})
_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class ExpressionError(ValueError):
    """A `when` expression that does not follow the grammar: `str()` says why in English,
    `text` is that reason as a Phrase, for a page to say it in its own language."""

    def __init__(self, text: Phrase) -> None:
        super().__init__(str(text))
        self.text = text


# --- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Literal:
    value: str | int


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[str | int, ...]


Operand = Name | Literal | ListLiteral


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Not | And | Or


@dataclass(frozen=True)
class Expression:
    """A parsed `when` condition; `str()` gives back its source text."""

    source: str = field(compare=False)
    node: Node

    def __str__(self) -> str:
        return self.source

    def names(self) -> frozenset[str]:
        """The identifiers (question ids or profile keys) the condition uses."""
        return frozenset(
            side.name
            for compare in _comparisons(self.node)
            for side in (compare.left, compare.right)
            if isinstance(side, Name)
        )

    def compared_literals(self) -> list[tuple[str, str | int]]:
        """(name, literal) pairs the condition tests for equality or membership."""
        pairs: list[tuple[str, str | int]] = []
        for compare in _comparisons(self.node):
            if compare.op not in ("==", "!=", "in", "not in"):
                continue
            left, right = compare.left, compare.right
            for name_side, other in ((left, right), (right, left)):
                if not isinstance(name_side, Name):
                    continue
                if isinstance(other, Literal):
                    pairs.append((name_side.name, other.value))
                elif isinstance(other, ListLiteral):
                    pairs.extend((name_side.name, item) for item in other.items)
        return pairs

    def evaluate(self, values: Mapping[str, object]) -> bool:
        """Whether the condition holds for these stored values (a missing name is null)."""
        return _evaluate(self.node, values)


def _comparisons(node: Node) -> Iterator[Compare]:
    if isinstance(node, Compare):
        yield node
    elif isinstance(node, Not):
        yield from _comparisons(node.operand)
    else:
        for operand in node.operands:
            yield from _comparisons(operand)


# --- tokenizer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # name, keyword, string, integer, op, end
    text: str
    column: int  # 1-based
    value: str | int | None = None


_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        column = i + 1
        if ch in " \t\r\n":
            i += 1
        elif ch in _NAME_START:
            start = i
            while i < n and source[i] in _NAME_CHARS:
                i += 1
            word = source[start:i]
            _check_word_end(source, i)
            tokens.append(_Token("keyword" if word in _RESERVED else "name", word, column))
        elif ch in _DIGITS or (ch == "-" and i + 1 < n and source[i + 1] in _DIGITS):
            start = i
            i += 1
            while i < n and source[i] in _DIGITS:
                i += 1
            if i < n and (source[i] in _NAME_CHARS or source[i] == "."):
                raise ExpressionError(
                    Phrase(
                        "invalid number at column %(column)s: only whole numbers are allowed",
                        column=column,
                    )
                    if source[i] == "."
                    else Phrase("invalid name or number at column %(column)s", column=column)
                )
            text = source[start:i]
            tokens.append(_Token("integer", text, column, int(text)))
        elif ch in "'\"":
            i, value = _read_string(source, i)
            tokens.append(_Token("string", source[column - 1 : i], column, value))
        elif source.startswith(("==", "!=", "<=", ">="), i):
            tokens.append(_Token("op", source[i : i + 2], column))
            i += 2
        elif ch in "<>()[],":
            tokens.append(_Token("op", ch, column))
            i += 1
        elif ch == "=":
            raise ExpressionError(
                Phrase("unexpected '=' at column %(column)s: use '==' to compare", column=column)
            )
        elif ch.isalpha():
            raise ExpressionError(_not_a_name_character(ch, column))
        else:
            raise ExpressionError(
                Phrase(
                    "unexpected %(character)s at column %(column)s",
                    character=repr(ch),
                    column=column,
                )
            )
    tokens.append(_Token("end", "", n + 1))
    return tokens


def _check_word_end(source: str, i: int) -> None:
    # "Paid" or "état" would otherwise split into confusing pieces.
    if i < len(source) and (source[i].isalnum()):
        raise ExpressionError(_not_a_name_character(source[i], i + 1))


def _not_a_name_character(character: str, column: int) -> Phrase:
    return Phrase(
        "unexpected %(character)s at column %(column)s: names use lowercase letters, digits and _",
        character=repr(character),
        column=column,
    )


def _read_string(source: str, start: int) -> tuple[int, str]:
    quote = source[start]
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in (quote, "\\"):
            chars.append(source[i + 1])
            i += 2
        elif ch == quote:
            return i + 1, "".join(chars)
        else:
            chars.append(ch)
            i += 1
    raise ExpressionError(
        Phrase("unterminated string starting at column %(column)s", column=start + 1)
    )


# --- parser ------------------------------------------------------------------------------------


def _describe(token: _Token) -> Phrase:
    if token.kind == "end":
        return Phrase("end of condition")
    return Phrase("%(token)s at column %(column)s", token=repr(token.text), column=token.column)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def is_at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def unexpected(self, expected: Phrase | str | None = None) -> ExpressionError:
        """What came instead of what was expected (a Phrase, or punctuation as written)."""
        token = _describe(self.current)
        if expected:
            return ExpressionError(
                Phrase(
                    "unexpected %(token)s: expected %(expected)s", token=token, expected=expected
                )
            )
        return ExpressionError(Phrase("unexpected %(token)s", token=token))

    def parse(self) -> Node:
        if self.is_at("end"):
            raise ExpressionError(Phrase("empty condition"))
        node = self.or_expr()
        if not self.is_at("end"):
            raise self.unexpected(Phrase("'and', 'or' or the end of the condition"))
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.is_at("keyword", "or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.is_at("keyword", "and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                Phrase(
                    "condition nested too deeply at column %(column)s", column=self.current.column
                )
            )
        try:
            if self.is_at("keyword", "not"):
                self.advance()
                return Not(self.not_expr())
            if self.is_at("op", "("):
                self.advance()
                node = self.or_expr()
                if not self.is_at("op", ")"):
                    raise self.unexpected("')'")
                self.advance()
                return node
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Compare:
        left = self.operand()
        token = self.current
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            return Compare(token.text, left, self.operand())
        if token.kind == "keyword" and token.text == "in":
            self.advance()
            return Compare("in", left, self.collection())
        if token.kind == "keyword" and token.text == "not" and self.peek().text == "in":
            self.advance()
            self.advance()
            return Compare("not in", left, self.collection())
        if token.kind == "op" and token.text == "[":
            raise self.unexpected(Phrase("a comparison operator"))
        raise ExpressionError(
            Phrase(
                "expected a comparison after %(before)s, got %(token)s",
                before=_describe(self.tokens[self.pos - 1]),
                token=_describe(token),
            )
        )

    def operand(self) -> Name | Literal:
        token = self.current
        if token.kind == "name":
            self.advance()
            return Name(token.text)
        if token.kind in ("string", "integer"):
            self.advance()
            assert token.value is not None
            return Literal(token.value)
        if token.kind == "op" and token.text == "[":
            raise ExpressionError(
                Phrase(
                    "a list at column %(column)s can only follow 'in' or 'not in'",
                    column=token.column,
                )
            )
        raise self.unexpected(Phrase("a question id, a quoted text or a number"))

    def collection(self) -> Name | ListLiteral:
        token = self.current
        if token.kind == "name":
            self.advance()
            return Name(token.text)
        if not self.is_at("op", "["):
            raise self.unexpected(Phrase("a list such as ['a', 'b'] or a question id"))
        self.advance()
        items: list[str | int] = []
        while not self.is_at("op", "]"):
            item = self.current
            if item.kind not in ("string", "integer"):
                raise self.unexpected(Phrase("a quoted text or a number in the list"))
            self.advance()
            assert item.value is not None
            items.append(item.value)
            if self.is_at("op", ","):
                self.advance()
            elif not self.is_at("op", "]"):
                raise self.unexpected(Phrase("',' or ']'"))
        self.advance()
        return ListLiteral(tuple(items))


def parse(source: str) -> Expression:
    """Parse a `when` condition, raising ExpressionError with the column of the problem."""
    if not isinstance(source, str):
        raise ExpressionError(Phrase("a condition must be text"))
    return Expression(source, _Parser(_tokenize(source)).parse())


# --- evaluation --------------------------------------------------------------------------------


def _evaluate(node: Node, values: Mapping[str, object]) -> bool:
    if isinstance(node, Compare):
        return _compare(node, values)
    if isinstance(node, Not):
        return not _evaluate(node.operand, values)
    if isinstance(node, And):
        return all(_evaluate(operand, values) for operand in node.operands)
    return any(_evaluate(operand, values) for operand in node.operands)


def _resolve(operand: Operand, values: Mapping[str, object]) -> object:
    if isinstance(operand, Name):
        return values.get(operand.name)
    if isinstance(operand, Literal):
        return operand.value
    return list(operand.items)


def _compare(node: Compare, values: Mapping[str, object]) -> bool:
    left = _resolve(node.left, values)
    right = _resolve(node.right, values)
    if left is None or right is None:
        return False
    op = node.op
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op == "in":
        return _contains(right, left)
    if op == "not in":
        return not _contains(right, left)
    return _order(op, left, right)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: object) -> int | float | None:
    """A number for a number, or for text that is exactly a number; None otherwise."""
    if _is_number(value):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        text = value.strip()
        return float(text) if "." in text else int(text)
    return None


def _equal(left: object, right: object) -> bool:
    if isinstance(left, list) or isinstance(right, list):
        if isinstance(left, list) and isinstance(right, list):
            # The same options, whatever their order.
            return all(_contains(right, item) for item in left) and all(
                _contains(left, item) for item in right
            )
        return False
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if _is_number(left) or _is_number(right):
        a, b = _as_number(left), _as_number(right)
        return a is not None and b is not None and a == b
    return left == right


def _contains(container: object, item: object) -> bool:
    # A list literal, or a multi answer; anything else (text, a number) holds nothing.
    if not isinstance(container, list) or isinstance(item, list):
        return False
    return any(element is not None and _equal(item, element) for element in container)


def _order(op: str, left: object, right: object) -> bool:
    a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return _is_ordered(op, a, b)
    if isinstance(left, str) and isinstance(right, str) and (a is None and b is None):
        return _is_ordered(op, left, right)
    return False


_Ordered = TypeVar("_Ordered", float, str)  # two numbers, or two texts


def _is_ordered(op: str, x: _Ordered, y: _Ordered) -> bool:
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y
