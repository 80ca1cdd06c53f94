"""The condition language: what it computes, and that anything outside its grammar is refused."""

import pytest

from shared.flows.expressions import ExpressionError, evaluate, parse

VALUES = {
    ("vars", "age"): 20, ("vars", "answer"): "Yes", ("vars", "typed_age"): "17", ("vars", "city"): "Recife",
    ("contact", "tags"): ["vip", "Newsletter"], ("contact", "lead_score"): 42, ("attributes", "tier"): "gold",
    ("contact", "email"): None,
}


def holds(source: str) -> bool:
    return evaluate(parse(source), lambda path: VALUES.get(path))


@pytest.mark.parametrize("source", [
    "vars.age >= 18", "vars.age == 20", "vars.age != 21", "vars.age < 21 and vars.age > 19", "vars.age <= 20",
    "vars.answer == 'yes'",  # text compares without regard to case
    "vars.typed_age < 18",  # a typed number compares as a number
    "'vip' in contact.tags", "'newsletter' in contact.tags", "contact.tags contains 'vip'",
    "vars.city contains 'cif'", "vars.city in ['Recife', 'Olinda']", "vars.city not in ['Natal']",
    "not (vars.age < 18)", "vars.age < 18 or attributes.tier == \"gold\"",
    "contact.lead_score > 40 and (attributes.tier == 'silver' or attributes.tier == 'gold')",
    "contact.email == null", "true", "not false",
])
def test_expressions_that_hold(source):
    assert holds(source) is True


@pytest.mark.parametrize("source", [
    "vars.age < 18", "vars.answer == 'no'", "'spam' in contact.tags", "vars.city in ['Natal']",
    "vars.missing == 'x'", "vars.missing > 3",  # a missing value neither equals nor orders
    "contact.email contains 'a'", "vars.answer > 3",  # values that cannot be ordered compare false
    "not vars.age", "vars.age < 18 and vars.age > 10 or false",
])
def test_expressions_that_do_not_hold(source):
    assert holds(source) is False


def test_and_binds_tighter_than_or():
    assert holds("true or false and false") is True
    assert holds("(true or false) and false") is False


@pytest.mark.parametrize("source", [
    "__import__('os').system('id')",  # no calls, no unknown names
    "vars.age + 1 > 2",  # no arithmetic
    "vars.age.__class__()",
    "os.system == 1",
    "age >= 18",  # names start with vars, contact, attributes or system
    "vars",  # a root alone reads nothing
    "vars.age >=",
    "vars.age >= 18 18",
    "(vars.age >= 18",
    "'unterminated",
    "vars.tags[x] == 1",
    "lambda: 1",
    "vars.age >= 18; import os",
    "",
    "   ",
    "x" * 2001,
    "(" * 50 + "true" + ")" * 50,
])
def test_anything_outside_the_grammar_is_refused(source):
    with pytest.raises(ExpressionError):
        parse(source)


def test_a_refusal_says_where():
    with pytest.raises(ExpressionError, match="at 11"):
        parse("vars.a == $")


def test_list_indexes_and_nested_fields_are_paths():
    assert parse("vars.items[1].name == 'b'") == (
        "compare", "==", ("path", ("vars", "items", 1, "name")), ("literal", "b"))
