"""Templates: a definition is refused with every problem listed before Meta sees it, and a send's
components are built, or refused naming the component and variable, before Meta answers 132000."""

import copy

import pytest

from sandbox import templates as sandbox_templates
from sandbox.state import Template
from shared.errors import InvalidInputError
from shared.whatsapp import outbound
from shared.whatsapp.templates import (
    TemplateDefinitionError,
    TemplateVariablesError,
    placeholders,
    render_components,
    validate_template,
)

BODY_TEXT = "Hi {{1}}, your order {{2}} ships today. Thanks for shopping with us!"


def header_text(text="Order {{1}}", examples=("ord-8812",)):
    component = {"type": "HEADER", "format": "TEXT", "text": text}
    if examples is not None:
        component["example"] = {"header_text": list(examples)}
    return component


def body(text=BODY_TEXT, examples=("Ana", "ord-8812")):
    component = {"type": "BODY", "text": text}
    if examples is not None:
        component["example"] = {"body_text": [list(examples)]}
    return component


def buttons(*items):
    return {"type": "BUTTONS", "buttons": list(items)}


def quick_reply(text="Stop promotions"):
    return {"type": "QUICK_REPLY", "text": text}


def url_button(url="https://shop.example/track/{{1}}", example=("https://shop.example/track/ord-8812",), text="Track"):
    button = {"type": "URL", "text": text, "url": url}
    if example is not None:
        button["example"] = list(example)
    return button


def phone_button(phone="+15550051310", text="Call us"):
    return {"type": "PHONE_NUMBER", "text": text, "phone_number": phone}


def copy_code_button(example="SAVE25"):
    return {"type": "COPY_CODE", "example": example}


def template(*components, **fields):
    return {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": list(components) if components else [body()],
        **fields,
    }


def auth_template(*, button=None, **fields):
    return template(
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "FOOTER", "code_expiration_minutes": 10},
        buttons(button or {"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}),
        category="AUTHENTICATION",
        name="login_code",
        **fields,
    )


def problems(definition):
    """The (path, message) pairs validate_template reports; [] when it accepts the definition."""
    try:
        validate_template(definition)
    except TemplateDefinitionError as exc:
        return [(error["path"], error["message"]) for error in exc.details["errors"]]
    return []


def assert_refused(definition, path, fragment):
    found = problems(definition)
    assert [p for p, _ in found] == [path], found
    assert fragment in found[0][1], found


# -- validate_template: the whole definition -------------------------------------------------------


def test_a_complete_template_is_accepted_and_comes_back_with_meta_enum_spelling():
    definition = {
        "name": "order_update",
        "language": "en_US",
        "category": "utility",
        "components": [
            {"type": "header", "format": "text", "text": "Order {{1}}", "example": {"header_text": ["ord-8812"]}},
            {**body(), "type": "body"},
            {"type": "footer", "text": "Acme Shop"},
            buttons(quick_reply(), {**url_button(), "type": "url"}, phone_button()),
        ],
    }
    original = copy.deepcopy(definition)

    normalized = validate_template(definition)

    assert normalized["category"] == "UTILITY"
    assert [c["type"] for c in normalized["components"]] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    assert normalized["components"][0]["format"] == "TEXT"
    assert [b["type"] for b in normalized["components"][3]["buttons"]] == ["QUICK_REPLY", "URL", "PHONE_NUMBER"]
    assert normalized["name"] == "order_update"
    assert definition == original  # the caller's dict is left alone


def test_every_problem_is_listed_at_once_with_its_path():
    definition = {
        "name": "Order Update",
        "language": "english",
        "category": "PROMOTIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "x" * 61},
            {"type": "BODY", "text": "Hi {{1}}, your order {{3}} ships today. Thanks for shopping with us!"},
            {"type": "FOOTER", "text": "Reply {{1}}"},
            buttons(quick_reply(), url_button(), quick_reply("More")),
        ],
    }
    with pytest.raises(TemplateDefinitionError) as caught:
        validate_template(definition)

    error = caught.value
    assert isinstance(error, InvalidInputError)
    assert (error.code, error.http_status) == ("invalid_template", 422)
    paths = [e["path"] for e in error.details["errors"]]
    assert paths == [
        "name",
        "language",
        "category",
        "components[0].text",
        "components[1].text",
        "components[1].example.body_text",
        "components[2].text",
        "components[3].buttons",
    ]
    assert "components[2].text: a FOOTER takes no variables" in error.message


def test_a_definition_that_is_not_an_object_is_refused():
    assert problems(["order_update"]) == [("", "a template definition is a JSON object")]


# -- name, language, category, parameter format, TTL ----------------------------------------------


@pytest.mark.parametrize("name", ["order_update", "promo_2026", "a" * 512])
def test_names_of_lowercase_letters_digits_and_underscores_up_to_512_are_accepted(name):
    assert problems(template(name=name)) == []


def test_an_uppercase_name_is_refused_with_the_name_to_use_instead_not_rewritten():
    assert_refused(template(name="Order_Update"), "name", "e.g. 'order_update'")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("order-update", "found '-'"),
        ("order update", "found ' '"),
        ("a" * 513, "limited to 512 characters"),
        ("", "needs a name"),
        (None, "needs a name"),
    ],
)
def test_bad_names_are_refused(name, fragment):
    assert_refused(template(name=name), "name", fragment)


@pytest.mark.parametrize("language", ["en", "en_US", "pt_BR", "fil"])
def test_language_codes_are_accepted(language):
    assert problems(template(language=language)) == []


@pytest.mark.parametrize("language", ["english", "en-US", "EN", "en_us", None])
def test_malformed_language_codes_are_refused(language):
    assert_refused(template(language=language), "language", "en_US")


@pytest.mark.parametrize("category", ["MARKETING", "UTILITY", "marketing"])
def test_categories_are_accepted(category):
    assert validate_template(template(category=category))["category"] == category.upper()


@pytest.mark.parametrize("category", ["PROMOTIONAL", "TRANSACTIONAL", None])
def test_unknown_categories_are_refused(category):
    assert_refused(template(category=category), "category", "MARKETING, UTILITY, AUTHENTICATION")


def test_named_parameters_are_refused_as_unsupported_and_positional_is_accepted():
    assert problems(template(parameter_format="positional")) == []
    assert_refused(template(parameter_format="named"), "parameter_format", "not supported")


def test_message_ttl_must_fall_in_the_categorys_range():
    assert problems(template(message_send_ttl_seconds=3600)) == []
    assert_refused(template(message_send_ttl_seconds=50_000), "message_send_ttl_seconds", "30 to 43200")
    assert problems(auth_template(message_send_ttl_seconds=600)) == []
    assert_refused(auth_template(message_send_ttl_seconds=1000), "message_send_ttl_seconds", "30 to 900")


# -- components -----------------------------------------------------------------------------------


def test_components_must_be_a_list():
    assert_refused(template(components=None), "components", "list of components")


def test_a_template_needs_exactly_one_body():
    assert_refused(template({"type": "FOOTER", "text": "Acme"}), "components", "exactly one BODY")
    assert_refused(template(body(), body()), "components[1]", "at most one BODY")


def test_a_template_takes_at_most_one_header_and_one_footer():
    assert_refused(template(header_text(), header_text(), body()), "components[1]", "at most one HEADER")
    footer = {"type": "FOOTER", "text": "Acme"}
    assert_refused(template(body(), footer, footer), "components[2]", "at most one FOOTER")


def test_unknown_component_types_are_refused():
    assert_refused(template(body(), {"type": "CAROUSEL", "cards": []}), "components[1].type", "HEADER, BODY")


# -- header ---------------------------------------------------------------------------------------


def test_a_text_header_takes_60_characters():
    assert problems(template(header_text("x" * 55 + "{{1}}"), body())) == []
    assert_refused(template(header_text("x" * 56 + "{{1}}"), body()), "components[0].text", "limited to 60")


def test_a_text_header_without_a_variable_needs_no_example():
    assert problems(template(header_text("Your order", examples=None), body())) == []


def test_a_text_header_takes_at_most_one_variable_and_it_is_1():
    assert_refused(
        template(header_text("{{1}} and {{2}}", examples=("a", "b")), body()), "components[0].text", "at most one"
    )
    assert_refused(template(header_text("Order {{2}}"), body()), "components[0].text", "must be {{1}}")


def test_a_text_header_variable_needs_its_example():
    assert_refused(template(header_text(examples=None), body()), "components[0].example.header_text", "example")
    assert_refused(template(header_text(examples=("",)), body()), "components[0].example.header_text", "example")
    assert_refused(
        template(header_text("Your order", examples=("x",)), body()),
        "components[0].example.header_text",
        "no variables",
    )


def test_a_text_header_needs_text():
    assert_refused(template(header_text(" ", examples=None), body()), "components[0].text", "needs its text")


@pytest.mark.parametrize("header_format", ["IMAGE", "VIDEO", "DOCUMENT"])
def test_a_media_header_needs_a_sample_handle(header_format):
    header = {"type": "HEADER", "format": header_format, "example": {"header_handle": ["4::aW1hZ2UvanBlZw==:ARb"]}}
    assert problems(template(header, body())) == []
    del header["example"]
    assert_refused(template(header, body()), "components[0].example.header_handle", "header_handle")


def test_a_location_header_needs_no_sample():
    assert problems(template({"type": "HEADER", "format": "LOCATION"}, body())) == []


@pytest.mark.parametrize(("header_format", "fragment"), [("GIF", "not supported"), ("AUDIO", "must be one of")])
def test_unsupported_and_unknown_header_formats_are_refused(header_format, fragment):
    header = {"type": "HEADER", "format": header_format, "example": {"header_handle": ["h"]}}
    assert_refused(template(header, body()), "components[0].format", fragment)


# -- body -----------------------------------------------------------------------------------------


def test_the_body_takes_1024_characters():
    assert problems(template(body("x" * 1024, examples=None))) == []
    assert_refused(template(body("x" * 1025, examples=None)), "components[0].text", "limited to 1024")


def test_the_body_needs_text():
    assert_refused(template({"type": "BODY"}), "components[0].text", "needs its text")


@pytest.mark.parametrize(
    "text",
    [
        "Hi {{1}}, your order {{3}} ships today. Thanks for shopping with us!",  # a gap
        "Hi {{2}}, your order {{3}} ships today. Thanks for shopping with us!",  # not from 1
        "Hi {{0}}, your order {{1}} ships today. Thanks for shopping with us!",  # from 0
    ],
)
def test_variables_must_be_numbered_from_1_without_gaps(text):
    assert_refused(template(body(text)), "components[0].text", "numbered from {{1}} with no gaps")


def test_variables_may_appear_in_any_order():
    text = "Your order {{2}} is ready, {{1}}. Thanks for shopping with us!"
    assert problems(template(body(text))) == []


@pytest.mark.parametrize("placeholder", ["{{first_name}}", "{{ 1 }}", "{{}}"])
def test_malformed_placeholders_are_refused(placeholder):
    text = f"Hi {placeholder}, your order ships today. Thanks for shopping with us!"
    found = problems(template(body(text, examples=None)))
    message = f"{placeholder} is not a placeholder: write variables as {{{{1}}}}, {{{{2}}}}…"
    assert ("components[0].text", message) in found


@pytest.mark.parametrize(
    "text",
    [
        "{{1}}, your order {{2}} ships today. Thanks for shopping with us!",
        "Hi {{1}}, thanks for shopping with us! Your order ships today: {{2}}",
        "Hi {{1}}, thanks for shopping with us! Your order ships today: {{2}}.",
    ],
)
def test_variables_cannot_start_or_end_the_body(text):
    assert_refused(template(body(text)), "components[0].text", "2388299")


def test_adjacent_variables_are_refused_and_words_between_them_fix_it():
    assert_refused(
        template(body("Hi {{1}} {{2}}, your order ships today. Thanks for shopping with us!")),
        "components[0].text",
        "{{1}} and {{2}} are adjacent",
    )
    assert problems(template(body("Hi {{1}} and {{2}}, your order ships today. Thanks for shopping!"))) == []


def test_too_many_variables_for_the_length_are_refused():
    # 2 variables need 5 words of the body's own; "Hi {{1}}, gate {{2}}. Thank you." has 4.
    assert_refused(template(body("Hi {{1}}, gate {{2}}. Thank you.")), "components[0].text", "2388293")
    assert problems(template(body("Hi {{1}}, gate {{2}}. Thank you kindly."))) == []


@pytest.mark.parametrize(
    ("example", "fragment"),
    [
        (None, 'give [["sample 1", "sample 2"]] with 2 value(s)'),
        ({"body_text": ["Ana", "ord-8812"]}, 'give [["sample 1", "sample 2"]]'),
        ({"body_text": [["Ana"]]}, "2 non-empty value(s) expected, got 1"),
        ({"body_text": [["Ana", " "]]}, "2 non-empty value(s) expected"),
    ],
)
def test_every_body_variable_needs_an_example(example, fragment):
    component = body(examples=None)
    if example is not None:
        component["example"] = example
    assert_refused(template(component), "components[0].example.body_text", fragment)


def test_examples_without_variables_are_refused():
    assert_refused(
        template(body("Your order ships today.", examples=("Ana",))), "components[0].example.body_text", "no variables"
    )


# -- footer ---------------------------------------------------------------------------------------


def test_the_footer_takes_60_characters_and_no_variables():
    assert problems(template(body(), {"type": "FOOTER", "text": "x" * 60})) == []
    assert_refused(template(body(), {"type": "FOOTER", "text": "x" * 61}), "components[1].text", "limited to 60")
    assert_refused(template(body(), {"type": "FOOTER", "text": "Reply {{1}}"}), "components[1].text", "no variables")
    assert_refused(template(body(), {"type": "FOOTER"}), "components[1].text", "needs its text")


# -- buttons --------------------------------------------------------------------------------------


def test_buttons_within_meta_limits_are_accepted():
    ten = buttons(*[quick_reply(f"Option {n}") for n in range(6)], url_button(), url_button(), phone_button(),
                  copy_code_button())  # fmt: skip
    assert problems(template(body(), ten, category="MARKETING")) == []


def test_a_template_takes_at_most_10_buttons():
    eleven = buttons(*[quick_reply(f"Option {n}") for n in range(11)])
    found = problems(template(body(), eleven))
    assert ("components[1].buttons", "a template takes at most 10 buttons, got 11") in found
    assert ("components[1].buttons", "a template takes at most 10 QUICK_REPLY button(s), got 11") in found


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([url_button(), url_button(), url_button()], "at most 2 URL button(s), got 3"),
        ([phone_button(), phone_button()], "at most 1 PHONE_NUMBER button(s), got 2"),
        ([copy_code_button(), copy_code_button()], "at most 1 COPY_CODE button(s), got 2"),
    ],
)
def test_per_type_button_limits(items, fragment):
    assert_refused(template(body(), buttons(*items)), "components[1].buttons", fragment)


def test_quick_replies_must_be_grouped_apart_from_other_buttons():
    assert problems(template(body(), buttons(quick_reply(), quick_reply("No"), url_button(), phone_button()))) == []
    assert problems(template(body(), buttons(url_button(), phone_button(), quick_reply(), quick_reply("No")))) == []
    assert_refused(
        template(body(), buttons(quick_reply(), url_button(), quick_reply("No"))), "components[1].buttons", "grouped"
    )
    assert_refused(
        template(body(), buttons(url_button(), quick_reply(), phone_button())), "components[1].buttons", "grouped"
    )


def test_button_labels_take_25_characters():
    assert problems(template(body(), buttons(quick_reply("x" * 25)))) == []
    assert_refused(template(body(), buttons(quick_reply("x" * 26))), "components[1].buttons[0].text", "limited to 25")
    assert_refused(template(body(), buttons(quick_reply(""))), "components[1].buttons[0].text", "label")


def test_a_buttons_component_needs_buttons():
    assert_refused(template(body(), buttons()), "components[1].buttons", "at least one button")


def test_a_static_url_button_needs_no_example():
    assert problems(template(body(), buttons(url_button("https://shop.example/help", example=None)))) == []


@pytest.mark.parametrize(
    ("button", "path", "fragment"),
    [
        (url_button("shop.example/track/{{1}}"), "url", "http(s) url"),
        (url_button("https://shop.example/{{1}}/track"), "url", "at the very end"),
        (url_button("https://shop.example/{{1}}/{{2}}"), "url", "at the very end"),
        (url_button("https://shop.example/track/{{2}}"), "url", "at the very end"),
        (url_button("https://shop.example/" + "x" * 1980 + "{{1}}"), "url", "limited to 2000"),
        (url_button(example=None), "example", "needs an example"),
        (url_button(example=("",)), "example", "needs an example"),
        (url_button("https://shop.example/help"), "example", "has no {{1}}"),
    ],
)
def test_url_button_rules(button, path, fragment):
    assert_refused(template(body(), buttons(button)), f"components[1].buttons[0].{path}", fragment)


def test_a_phone_button_needs_a_number_of_at_most_20_characters():
    assert problems(template(body(), buttons(phone_button("+" + "1" * 19)))) == []
    assert_refused(
        template(body(), buttons(phone_button("+" + "1" * 20))),
        "components[1].buttons[0].phone_number",
        "limited to 20",
    )
    assert_refused(template(body(), buttons(phone_button(""))), "components[1].buttons[0].phone_number", "needs")


def test_a_copy_code_button_needs_an_example_of_at_most_15_characters():
    assert problems(template(body(), buttons(copy_code_button("X" * 15)), category="MARKETING")) == []
    assert_refused(
        template(body(), buttons(copy_code_button("X" * 16))), "components[1].buttons[0].example", "limited to 15"
    )
    assert_refused(template(body(), buttons(copy_code_button(None))), "components[1].buttons[0].example", "needs")


@pytest.mark.parametrize(("kind", "fragment"), [("FLOW", "not supported"), ("CALL_ME", "must be one of")])
def test_unsupported_and_unknown_button_types_are_refused(kind, fragment):
    assert_refused(template(body(), buttons({"type": kind, "text": "Go"})), "components[1].buttons[0].type", fragment)


def test_otp_buttons_belong_only_to_authentication_templates():
    otp = {"type": "OTP", "otp_type": "COPY_CODE"}
    assert_refused(template(body(), buttons(otp)), "components[1].buttons", "only to AUTHENTICATION")


# -- authentication templates ---------------------------------------------------------------------


def test_an_authentication_template_with_meta_s_fixed_body_is_accepted():
    assert problems(auth_template()) == []
    one_tap = {
        "type": "OTP",
        "otp_type": "one_tap",
        "supported_apps": [{"package_name": "com.example.app", "signature_hash": "K8a/AINcGX7"}],
    }
    assert validate_template(auth_template(button=one_tap))["components"][2]["buttons"][0]["otp_type"] == "ONE_TAP"


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda t: t["components"].insert(0, header_text()), "components[0]", "no HEADER"),
        (lambda t: t["components"][0].update(text="Your code is {{1}}. Do not share it."), "components[0].text",
         "fixed body"),
        (lambda t: t["components"][1].update(code_expiration_minutes=91), "components[1].code_expiration_minutes",
         "1 to 90"),
        (lambda t: t["components"][2].update(buttons=[quick_reply()]), "components[2].buttons", "exactly one OTP"),
        (lambda t: t["components"][2]["buttons"].append(quick_reply()), "components[2].buttons", "only its OTP"),
        (lambda t: t["components"][2]["buttons"][0].update(otp_type="SMS"), "components[2].buttons[0].otp_type",
         "COPY_CODE, ONE_TAP, ZERO_TAP"),
        (lambda t: t["components"][2]["buttons"][0].update(otp_type="ONE_TAP"),
         "components[2].buttons[0].supported_apps", "package_name and signature_hash"),
    ],
)  # fmt: skip
def test_authentication_template_rules(change, path, fragment):
    definition = auth_template()
    change(definition)
    assert_refused(definition, path, fragment)


def test_a_zero_tap_button_needs_the_terms_accepted():
    zero_tap = {
        "type": "OTP",
        "otp_type": "ZERO_TAP",
        "supported_apps": [{"package_name": "com.example.app", "signature_hash": "K8a/AINcGX7"}],
    }
    assert_refused(auth_template(button=zero_tap), "components[2].buttons[0].zero_tap_terms_accepted", "true")
    assert problems(auth_template(button={**zero_tap, "zero_tap_terms_accepted": True})) == []


# -- placeholders ---------------------------------------------------------------------------------


def test_placeholders_say_what_each_component_needs():
    definition = template(header_text(), body(), buttons(quick_reply(), url_button(), phone_button()))
    assert placeholders(definition) == {"header": 1, "header_format": "TEXT", "body": 2, "buttons": {1: 1}}


def test_placeholders_of_a_template_without_variables():
    static_url = url_button("https://x.example", example=None)
    definition = template(body("Your order ships today.", examples=None), buttons(static_url))
    assert placeholders(definition) == {"header": 0, "header_format": None, "body": 0, "buttons": {}}


def test_placeholders_count_a_media_header_and_a_coupon():
    definition = template({"type": "HEADER", "format": "IMAGE"}, body(), buttons(copy_code_button()))
    assert placeholders(definition) == {"header": 1, "header_format": "IMAGE", "body": 2, "buttons": {0: 1}}


def test_placeholders_of_an_authentication_template_ask_for_the_code_twice():
    assert placeholders(auth_template()) == {"header": 0, "header_format": None, "body": 1, "buttons": {0: 1}}


def test_placeholders_read_the_lowercase_spelling_too():
    definition = {"components": [{"type": "body", "text": "Hi {{1}}, order {{2}} is here."}]}
    assert placeholders(definition)["body"] == 2


# -- render_components ----------------------------------------------------------------------------

FULL = template(header_text(), body(), buttons(quick_reply(), url_button()))


def test_render_text_header_body_url_button_and_quick_reply_payload():
    variables = {
        "header": ["ord-8812"],
        "body": ["Ana", "ord-8812"],
        "buttons": {"0": ["STOP_PROMOS"], "1": ["ord-8812"]},
    }
    components = render_components(FULL, variables)
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "ord-8812"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "ord-8812"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "ord-8812"}]},
    ]  # fmt: skip


def test_a_quick_reply_payload_is_optional():
    components = render_components(FULL, {"header": ["ord-8812"], "body": ["Ana", "ord-8812"], "buttons": {1: ["x"]}})
    assert [c.get("sub_type") for c in components] == [None, None, "url"]


@pytest.mark.parametrize(
    ("header_format", "value", "parameter"),
    [
        ("IMAGE", {"link": "https://cdn.example/a.jpg"},
         {"type": "image", "image": {"link": "https://cdn.example/a.jpg"}}),
        ("VIDEO", {"id": "1037543291543636"}, {"type": "video", "video": {"id": "1037543291543636"}}),
        ("DOCUMENT", {"id": "1037", "filename": "invoice.pdf"},
         {"type": "document", "document": {"id": "1037", "filename": "invoice.pdf"}}),
        ("LOCATION", {"latitude": 37.48, "longitude": -122.14, "name": "HQ"},
         {"type": "location", "location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}}),
    ],
)  # fmt: skip
def test_render_media_and_location_headers(header_format, value, parameter):
    definition = template({"type": "HEADER", "format": header_format}, body())
    components = render_components(definition, {"header": value, "body": ["Ana", "ord-8812"]})
    assert components[0] == {"type": "header", "parameters": [parameter]}


def test_render_a_copy_code_coupon():
    definition = template(body(), buttons(copy_code_button()), category="MARKETING")
    components = render_components(definition, {"body": ["Ana", "ord-8812"], "buttons": {"0": ["SAVE25"]}})
    assert components[1] == {
        "type": "button", "sub_type": "copy_code", "index": "0",
        "parameters": [{"type": "coupon_code", "coupon_code": "SAVE25"}],
    }  # fmt: skip


def test_render_an_authentication_code_in_the_body_and_the_url_button():
    components = render_components(auth_template(), {"body": ["483920"], "buttons": {"0": ["483920"]}})
    assert components == [
        {"type": "body", "parameters": [{"type": "text", "text": "483920"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "483920"}]},
    ]


def test_a_body_only_template_takes_flat_numbered_variables_and_values_are_stringified():
    expected = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "42"}]}]
    assert render_components(template(), {"1": "Ana", "2": 42}) == expected
    assert render_components(template(), {1: "Ana", 2: 42}) == expected
    assert render_components(template(), {"body": ["Ana", 42]}) == expected


def test_a_template_without_variables_renders_no_components():
    definition = template(body("Your order ships today.", examples=None))
    assert render_components(definition, {}) == []
    assert render_components(definition, None) == []


def test_a_synced_template_with_named_parameters_is_refused_rather_than_sent_without_values():
    named = template(body("Hi {{first_name}}, your order ships today."), parameter_format="named")
    with pytest.raises(TemplateDefinitionError) as caught:
        render_components(named, {"body": ["Ana"]})
    assert [e["path"] for e in caught.value.details["errors"]] == ["parameter_format", "components[0].text"]


def test_rendered_components_make_a_template_message():
    components = render_components(FULL, {"header": ["o-1"], "body": ["Ana", "o-1"], "buttons": {"1": ["o-1"]}})
    content = outbound.template_content("order_update", "en_US", components)
    assert content["components"] == components


def variables_errors(definition, variables):
    with pytest.raises(TemplateVariablesError) as caught:
        render_components(definition, variables)
    error = caught.value
    assert isinstance(error, InvalidInputError)
    assert (error.code, error.http_status) == ("template_variables_mismatch", 422)
    return error


def only_problem(definition, variables):
    error = variables_errors(definition, variables)
    [problem] = error.details["errors"]
    assert problem["message"] in error.message
    return problem


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_a_missing_body_variable_is_named_with_the_expected_count(missing):
    problem = only_problem(template(), {"body": ["Ana", missing]})
    assert problem == {
        "component": "body", "variable": "{{2}}", "problem": "missing", "expected": 2,
        "message": "body {{2}} is missing (body takes 2 variables)",
    }  # fmt: skip


def test_a_short_body_list_names_the_missing_variable():
    problem = only_problem(template(), {"body": ["Ana"]})
    assert (problem["variable"], problem["problem"]) == ("{{2}}", "missing")


def test_an_extra_body_variable_is_named():
    problem = only_problem(template(), {"body": ["Ana", "ord-8812", "surplus"]})
    assert problem["message"] == "body {{3}} is extra (body takes 2 variables)"


def test_flat_variables_name_the_missing_and_extra_numbers():
    error = variables_errors(template(), {"1": "Ana", "3": "x"})
    found = [(p["variable"], p["problem"]) for p in error.details["errors"]]
    assert found == [("{{2}}", "missing"), ("{{3}}", "extra")]


def test_flat_variables_for_a_template_with_a_header_report_the_header_missing():
    problem = only_problem(FULL | {"components": FULL["components"][:2]}, {"1": "Ana", "2": "ord-8812"})
    assert problem["message"] == "header {{1}} is missing (header takes 1 variable)"


def test_unknown_keys_are_refused():
    problem = only_problem(template(), {"body": ["Ana", "ord-8812"], "footer": ["x"]})
    assert (problem["component"], problem["problem"]) == ("footer", "extra")
    problem = only_problem(template(), {"1": "Ana", "2": "ord-8812", "name": "x"})
    assert (problem["component"], problem["problem"]) == ("name", "extra")


def test_a_header_value_for_a_template_without_header_variables_is_extra():
    problem = only_problem(template(), {"header": ["x"], "body": ["Ana", "ord-8812"]})
    assert problem["message"] == "header is extra: this template's header takes no variables"


def test_a_text_header_value_must_be_a_list():
    definition = template(header_text(), body())
    problem = only_problem(definition, {"header": "ord-8812", "body": ["Ana", "ord-8812"]})
    assert problem["message"] == "header takes a list of 1 value(s), not str"


@pytest.mark.parametrize(
    ("header_format", "value", "problem_kind"),
    [
        ("IMAGE", None, "missing"),
        ("IMAGE", {"link": "https://cdn.example/a.jpg", "id": "1"}, "invalid"),
        ("IMAGE", {"link": ""}, "invalid"),
        ("IMAGE", {"link": "https://cdn.example/a.jpg", "caption": "hi"}, "invalid"),
        ("VIDEO", {"id": "1", "filename": "a.mp4"}, "invalid"),
        ("IMAGE", ["https://cdn.example/a.jpg"], "invalid"),
        ("LOCATION", {"latitude": 37.48}, "invalid"),
    ],
)
def test_media_header_values_are_checked(header_format, value, problem_kind):
    definition = template({"type": "HEADER", "format": header_format}, body())
    problem = only_problem(definition, {"header": value, "body": ["Ana", "ord-8812"]})
    assert (problem["component"], problem["variable"], problem["problem"]) == (
        "header", header_format.lower(), problem_kind
    )  # fmt: skip


def test_a_missing_url_suffix_is_named_with_its_button():
    problem = only_problem(FULL, {"header": ["o-1"], "body": ["Ana", "o-1"]})
    assert problem["message"] == "buttons[1] {{1}} is missing (buttons[1] takes 1 variable)"


def test_values_for_buttons_that_take_none_or_do_not_exist_are_extra():
    definition = template(body(), buttons(phone_button(), url_button("https://x.example/help", None)))
    error = variables_errors(definition, {"body": ["Ana", "o-1"], "buttons": {"0": ["x"], "1": ["y"], "7": ["z"]}})
    assert [p["message"] for p in error.details["errors"]] == [
        "buttons[7] is extra: the template has 2 button(s), indexed from 0",
        "buttons[0] is extra: a PHONE_NUMBER button takes no variables",
        "buttons[1] is extra: a URL button takes no variables",
    ]


def test_a_quick_reply_takes_one_payload():
    problem = only_problem(FULL, {"header": ["o-1"], "body": ["Ana", "o-1"], "buttons": {"0": ["a", "b"], "1": ["o"]}})
    assert problem["message"] == "buttons[0] {{2}} is extra (buttons[0] takes 1 variable)"


@pytest.mark.parametrize(
    ("value", "what"),
    [("line\nbreak", "a line break"), ("a\ttab", "a tab"), ("five     spaces", "more than 4 consecutive spaces")],
)
def test_body_values_with_newlines_tabs_or_runs_of_spaces_are_refused_naming_the_variable(value, what):
    problem = only_problem(template(), {"body": ["Ana", value]})
    assert (problem["component"], problem["variable"], problem["problem"]) == ("body", "{{2}}", "invalid")
    assert problem["message"].startswith(f"body {{{{2}}}} contains {what}")


def test_a_header_value_with_a_line_break_is_refused():
    definition = template(header_text(), body())
    problem = only_problem(definition, {"header": ["ord\n8812"], "body": ["Ana", "ord-8812"]})
    assert (problem["component"], problem["variable"], problem["problem"]) == ("header", "{{1}}", "invalid")


def test_four_spaces_and_1024_characters_are_fine_in_a_body_value():
    [body_component] = render_components(template(), {"body": ["four    spaces", "x" * 1024]})
    assert [p["text"] for p in body_component["parameters"]] == ["four    spaces", "x" * 1024]


def test_a_body_value_over_1024_characters_is_refused():
    problem = only_problem(template(), {"body": ["Ana", "x" * 1025]})
    assert problem["message"] == "body {{2}} is 1025 characters long; the limit is 1024"


def test_a_coupon_over_15_characters_is_refused():
    definition = template(body(), buttons(copy_code_button()))
    problem = only_problem(definition, {"body": ["Ana", "o-1"], "buttons": {"0": ["X" * 16]}})
    assert problem["message"] == "buttons[0] {{1}} is 16 characters long; the limit is 15"


def test_every_variable_problem_is_listed_at_once():
    error = variables_errors(FULL, {"header": [], "body": ["Ana", "", "extra"], "buttons": {"5": ["x"]}})
    assert [(p["component"], p["variable"], p["problem"]) for p in error.details["errors"]] == [
        ("header", "{{1}}", "missing"),
        ("body", "{{2}}", "missing"),
        ("body", "{{3}}", "extra"),
        ("buttons[5]", "", "extra"),
        ("buttons[1]", "{{1}}", "missing"),
    ]


# -- agreement with the Cloud API sandbox (PyTake's stand-in for Meta) ----------------------------


@pytest.mark.parametrize(
    ("definition", "variables"),
    [
        (FULL, {"header": ["o-1"], "body": ["Ana", "o-1"], "buttons": {"0": ["STOP"], "1": ["o-1"]}}),
        (template({"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["h"]}}, body(),
                  buttons(url_button(), phone_button())),
         {"header": {"link": "https://cdn.example/i.pdf", "filename": "i.pdf"}, "body": ["Ana", "o-1"],
          "buttons": {"0": ["o-1"]}}),
        (auth_template(), {"body": ["483920"], "buttons": {"0": ["483920"]}}),
    ],
)  # fmt: skip
def test_the_sandbox_accepts_what_we_validate_and_render(definition, variables):
    normalized = validate_template(definition)
    stored = sandbox_templates.validate_definition(normalized)
    approved = Template(id="1", waba_id="w", status="APPROVED", **stored)
    components = render_components(normalized, variables)
    sandbox_templates.check_send(approved, outbound.template_content(stored["name"], stored["language"], components))
