"""The condition language: a small recursive-descent parser and evaluator; never Python's eval.

    expression := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "in" | "not in") operand]
    operand    := number | 'text' | "text" | true | false | null | [operand, ...] | path | "(" expression ")"
    path       := root ("." name | "[" integer "]")*      root: vars, contact, attributes, system

Text compares without regard to case (`vars.answer == "yes"` matches "Yes"); a number and a text that
reads as a number compare as numbers; a comparison between values that cannot be ordered is false.
"""

from __future__ import annotations

import functools

import re
from typing import Any, Callable

ROOTS = ("vars", "contact", "attributes", "system")
KEYWORDS = {"and", "or", "not", "in", "contains", "true", "false", "null"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
""", re.VERBOSE)
MAX_LENGTH = 2000
MAX_DEPTH = 40


class ExpressionError(ValueError):
    """What is wrong with an expression, and at which character."""


def _tokens(source: str) -> list[tuple[str, Any, int]]:
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"an expression is limited to {MAX_LENGTH} characters")
    tokens, position = [], 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise ExpressionError(f"unexpected character {source[position]!r} at {position + 1}")
        kind, text = match.lastgroup, match.group()
        if kind == "number":
            tokens.append(("literal", float(text) if "." in text else int(text), position))
        elif kind == "string":
            tokens.append(("literal", re.sub(r"\\(.)", r"\1", text[1:-1]), position))
        elif kind == "name" and text in KEYWORDS:
            literal = {"true": True, "false": False, "null": None}
            tokens.append(("literal", literal[text], position) if text in literal else (text, text, position))
        elif kind != "space":
            tokens.append((kind if kind == "name" else text, text, position))
        position = match.end()
    tokens.append(("end", None, len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0
        self.depth = 0

    @property
    def kind(self) -> str:
        return self.tokens[self.index][0]

    def take(self, kind: str) -> Any:
        token_kind, value, position = self.tokens[self.index]
        if token_kind != kind:
            found = "the end" if token_kind == "end" else repr(value)
            raise ExpressionError(f"expected {kind!r} at {position + 1}, found {found}")
        self.index += 1
        return value

    def parse(self) -> tuple:
        tree = self.expression()
        self.take("end")
        return tree

    def expression(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("the expression is nested too deeply")
        tree = self.binary("or", lambda: self.binary("and", self.negation))
        self.depth -= 1
        return tree

    def binary(self, keyword: str, operand: Callable[[], tuple]) -> tuple:
        tree = operand()
        while self.kind == keyword:
            self.take(keyword)
            tree = (keyword, tree, operand())
        return tree

    def negation(self) -> tuple:
        if self.kind == "not":
            self.take("not")
            return ("not", self.negation())
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.operand()
        if self.kind in ("==", "!=", "<", "<=", ">", ">=", "contains", "in"):
            operator = self.take(self.kind)
            return ("compare", operator, left, self.operand())
        if self.kind == "not" and self.tokens[self.index + 1][0] == "in":
            self.take("not"), self.take("in")
            return ("not", ("compare", "in", left, self.operand()))
        return left

    def operand(self) -> tuple:
        if self.kind == "literal":
            return ("literal", self.take("literal"))
        if self.kind == "(":
            self.take("(")
            tree = self.expression()
            self.take(")")
            return tree
        if self.kind == "[":
            return self.list_literal()
        return self.path()

    def list_literal(self) -> tuple:
        self.take("[")
        items = []
        while self.kind != "]":
            items.append(self.operand())
            if self.kind != "]":
                self.take(",")
        self.take("]")
        return ("list", tuple(items))

    def path(self) -> tuple:
        position = self.tokens[self.index][2]
        root = self.take("name")
        if root not in ROOTS:
            raise ExpressionError(f"unknown name {root!r} at {position + 1}: "
                                  f"names start with one of {', '.join(ROOTS)}")
        parts: list[str | int] = [root]
        while self.kind in (".", "["):
            if self.take(self.kind) == ".":
                parts.append(self.take("name"))
            else:
                index = self.take("literal")
                if not isinstance(index, int) or isinstance(index, bool):
                    raise ExpressionError("a list index must be a whole number")
                parts.append(index)
                self.take("]")
        if len(parts) == 1:
            raise ExpressionError(f"{root!r} needs a field, e.g. {root}.name")
        return ("path", tuple(parts))


def parse(source: str) -> tuple:
    """The syntax tree of `source`; raises ExpressionError for anything outside the grammar."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty")
    return _parsed(source)


@functools.lru_cache(maxsize=1024)
def _parsed(source: str) -> tuple:
    # Trees are nested tuples, never changed once built: a condition a bot evaluates at every step is parsed once.
    return _Parser(source).parse()


def evaluate(tree: tuple, lookup: Callable[[tuple], Any]) -> Any:
    """`lookup` resolves a path (("vars", "age")) to its value, None when it has none."""
    kind = tree[0]
    if kind == "literal":
        return tree[1]
    if kind == "list":
        return [evaluate(item, lookup) for item in tree[1]]
    if kind == "path":
        return lookup(tree[1])
    if kind == "not":
        return not truthy(evaluate(tree[1], lookup))
    if kind == "and":
        return truthy(evaluate(tree[1], lookup)) and truthy(evaluate(tree[2], lookup))
    if kind == "or":
        return truthy(evaluate(tree[1], lookup)) or truthy(evaluate(tree[2], lookup))
    return _compare(tree[1], evaluate(tree[2], lookup), evaluate(tree[3], lookup))


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def _folded(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", "."))
        except ValueError:
            return value
    return value


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "contains":
        left, right = right, left
        operator = "in"
    if operator == "in":
        if isinstance(right, str):
            return isinstance(left, (str, int, float)) and str(left).casefold() in right.casefold()
        if isinstance(right, (list, tuple, dict)):
            return _folded(left) in [_folded(item) for item in right]
        return False
    if isinstance(left, (int, float)) != isinstance(right, (int, float)):
        left, right = _number(left), _number(right)
    left, right = _folded(left), _folded(right)
    if operator == "==":
        return left == right
    if operator == "!=":
        return left != right
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]
    except TypeError:
        return False
