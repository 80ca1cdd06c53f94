"""A campaign's variables: the mapping checked against the template, then resolved per recipient (pure)."""

from __future__ import annotations

import time

import pytest

from shared.campaigns.variables import MissingVariable, check_mapping, compile_mapping, resolve
from shared.whatsapp.templates import render_components

PROMO = {
    "name": "summer_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} earns a coupon: {{3}}."},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Shop", "url": "https://shop.example/c/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
        ]},
    ],
}
GREETING = {
    "name": "greeting",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hello {{1}}"},
        {"type": "BODY", "text": "Thanks for being with us."},
    ],
}
MAPPING = {
    "header": {"source": "literal", "value": "https://example.com/a.jpg"},
    "body": [
        {"source": "contact.name", "fallback": "there"},
        {"source": "attribute.order_id", "fallback": "your order"},
        {"source": "literal", "value": "SUMMER25"},
    ],
    "buttons": {"0": [{"source": "attribute.coupon"}]},
}
ANA = {"name": "Ana Souza", "phone_e164": "+5511987654321", "email": "ana@example.com",
       "attributes": {"order_id": "ord-8812", "coupon": "ANA10"}}


def codes(problems: list[dict]) -> dict[str, str]:
    return {problem["field"]: problem["code"] for problem in problems}


# -- check_mapping -----------------------------------------------------------------------------------


def test_a_complete_mapping_has_no_problems():
    assert check_mapping(PROMO, MAPPING, attribute_keys={"order_id", "coupon"}) == []
    assert check_mapping(PROMO, MAPPING, attribute_keys=None) == []


def test_every_problem_is_listed_at_once_with_plain_words():
    mapping = {
        "body": [{"source": "contact.nickname"}, {"source": "attribute.tier"}, {"source": "literal"},
                 {"source": "literal", "value": "extra"}],
        "buttons": {"3": [{"source": "literal", "value": "x"}]},
        "footer": [],
    }
    problems = check_mapping(PROMO, mapping, attribute_keys={"order_id"})
    assert codes(problems) == {
        "footer": "unknown_variable",
        "header": "missing_media",
        "body.1": "unknown_source",
        "body.2": "unknown_attribute",
        "body.3": "missing_value",
        "body.4": "unknown_variable",
        "buttons.3": "unknown_variable",
        "buttons.0.1": "missing",
    }
    messages = {problem["field"]: problem["message"] for problem in problems}
    assert messages["body.4"] == "the template has no body {{4}}: its body takes 3 variables"
    assert messages["body.1"].startswith("body {{1}}: unknown source 'contact.nickname'")
    assert messages["body.2"] == "body {{2}}: the contact attribute 'tier' is not defined for this organization"
    assert messages["buttons.0.1"] == "button 0 {{1}} has no source"
    assert messages["buttons.3"] == "button 3 of the template does not exist"


def test_missing_placeholders_are_counted_like_render_components():
    problems = check_mapping(PROMO, {"header": MAPPING["header"], "body": [{"source": "contact.name"}]})
    assert codes(problems) == {"body.2": "missing", "body.3": "missing", "buttons.0.1": "missing"}


def test_a_media_header_needs_a_link_or_an_id():
    for header in ({"source": "literal", "value": ""}, {"source": "literal", "value": {"filename": "a.pdf"}}):
        assert codes(check_mapping(PROMO, {**MAPPING, "header": header}))["header"] == "missing_media"
    for header in ({"source": "literal", "value": {"id": "1037543291543636"}},
                   {"source": "attribute.photo", "fallback": "https://example.com/default.jpg"}):
        assert check_mapping(PROMO, {**MAPPING, "header": header}) == []


def test_a_text_header_takes_its_one_variable_as_a_list_or_an_entry():
    assert check_mapping(GREETING, {"header": [{"source": "contact.first_name", "fallback": "friend"}]}) == []
    assert check_mapping(GREETING, {"header": {"source": "contact.first_name", "fallback": "friend"}}) == []
    assert codes(check_mapping(GREETING, {})) == {"header.1": "missing"}
    assert codes(check_mapping(GREETING, {"header": [{"source": "contact.name"}], "body": [
        {"source": "contact.name"}]})) == {"body.1": "unknown_variable"}


def test_a_header_without_variables_takes_none():
    welcome = {"components": [{"type": "BODY", "text": "Welcome."}]}
    assert codes(check_mapping(welcome, {"header": {"source": "literal", "value": "x"}})) == {
        "header": "unknown_variable"}


def test_a_quick_reply_may_take_a_payload_but_other_buttons_without_variables_may_not():
    with_payload = {**MAPPING, "buttons": {**MAPPING["buttons"], "1": [{"source": "literal", "value": "STOP"}]}}
    assert check_mapping(PROMO, with_payload) == []
    phone = {"components": [{"type": "BODY", "text": "Call us."}, {"type": "BUTTONS", "buttons": [
        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550001111"}]}]}
    assert codes(check_mapping(phone, {"buttons": {"0": [{"source": "literal", "value": "x"}]}})) == {
        "buttons.0": "unknown_variable"}


@pytest.mark.parametrize("entry,code", [
    ({"source": "literal", "value": "two\nlines"}, "invalid_value"),
    ({"source": "contact.name", "fallback": "a\tb"}, "invalid_value"),
    ({"source": "contact.name", "fallback": ""}, "invalid_value"),
    ({"source": "contact.name", "fallbak": "x"}, "invalid"),
    ("contact.name", "invalid"),
    ({"source": "attribute."}, "unknown_source"),
])
def test_entries_meta_would_refuse_are_caught(entry, code):
    mapping = {"header": {"source": "literal", "value": "https://example.com/a.jpg"}, "body": [
        entry, {"source": "literal", "value": "b"}, {"source": "literal", "value": "c"}],
        "buttons": MAPPING["buttons"]}
    assert codes(check_mapping(PROMO, mapping)) == {"body.1": code}


def test_shapes_that_are_not_a_mapping_are_refused():
    assert codes(check_mapping(PROMO, [])) == {"": "invalid"}
    assert codes(check_mapping(PROMO, {**MAPPING, "body": {"1": {"source": "contact.name"}}})) == {"body": "invalid"}


# -- resolve -----------------------------------------------------------------------------------------


def test_resolved_variables_render_into_the_components():
    variables = resolve(MAPPING, ANA)
    assert variables == {"header": {"link": "https://example.com/a.jpg"},
                         "body": ["Ana Souza", "ord-8812", "SUMMER25"], "buttons": {"0": ["ANA10"]}}
    components = render_components(PROMO, variables)
    texts = ["Ana Souza", "ord-8812", "SUMMER25"]
    assert components[1] == {"type": "body", "parameters": [{"type": "text", "text": text} for text in texts]}
    assert components[2]["parameters"] == [{"type": "text", "text": "ANA10"}]


def test_empty_sources_take_their_fallback():
    bruno = {"name": "  ", "phone_e164": "+5511911112222", "email": None, "attributes": {"coupon": "B5"}}
    assert resolve(MAPPING, bruno)["body"] == ["there", "your order", "SUMMER25"]
    no_attributes = {"name": "Carla", "phone_e164": "+5511933334444", "attributes": None}
    with pytest.raises(MissingVariable) as missing:
        resolve(MAPPING, no_attributes)
    assert (missing.value.field, missing.value.source, missing.value.reason) == (
        "buttons.0.1", "attribute.coupon", "missing_variable")


def test_contact_sources():
    mapping = {"body": [{"source": s} for s in ("contact.first_name", "contact.phone", "contact.email")]}
    assert resolve(mapping, ANA)["body"] == ["Ana", "+5511987654321", "ana@example.com"]
    with pytest.raises(MissingVariable):
        resolve({"body": [{"source": "contact.first_name"}]}, {"name": None})


def test_recipient_values_are_made_sendable():
    contact = {"name": "Ana\nSouza", "attributes": {"order_id": 8812, "coupon": True}}
    assert resolve(MAPPING, contact)["body"][:2] == ["Ana Souza", "8812"]
    render_components(PROMO, resolve(MAPPING, contact))


def test_media_headers_from_a_source_are_links_or_ids():
    mapping = {"header": {"source": "attribute.photo", "filename": "invoice.pdf"}}
    assert compile_mapping(mapping).resolve({"attributes": {"photo": "http://x.example/p.pdf"}}) == {
        "header": {"link": "http://x.example/p.pdf", "filename": "invoice.pdf"}}
    assert resolve(mapping, {"attributes": {"photo": "1037543291543636"}})["header"]["id"] == "1037543291543636"
    literal = {"header": {"source": "literal", "value": {"id": "42", "filename": None}}}
    assert resolve(literal, {}) == {"header": {"id": "42"}}


def test_a_text_header_resolves_to_its_one_value():
    assert resolve({"header": [{"source": "contact.first_name"}]}, ANA) == {"header": ["Ana"]}


def test_resolve_and_render_stay_within_tens_of_microseconds_per_recipient():
    compiled = compile_mapping(MAPPING)
    contacts = [{**ANA, "attributes": {"order_id": f"ord-{i}", "coupon": f"C{i}"}} for i in range(2000)]
    started = time.perf_counter()
    for contact in contacts:
        render_components(PROMO, compiled.resolve(contact))
    per_recipient = (time.perf_counter() - started) / len(contacts)
    assert per_recipient < 200e-6, f"{per_recipient * 1e6:.1f} µs per recipient"
