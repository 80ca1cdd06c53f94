"""Message templates (reference §2 template sends, §7 templates management). Pure functions, no I/O.

`validate_template()` checks a definition before `POST /{waba-id}/message_templates`, listing every
problem at once, so a mistake fails in our API instead of in Meta's review a day later.
`placeholders()` and `render_components()` turn an approved definition plus one recipient's values
into the `components` of a template send, so a miscount fails here with the component and variable
named, instead of reaching Meta as an unhelpful 132000.

Scope: positional placeholders (`{{1}}`, `{{2}}`…); headers TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION;
buttons QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE and OTP. `validate_template()` refuses named
parameters, GIF (Marketing Messages Lite only) and PRODUCT headers and the other button types the
reference lists (FLOW, VOICE_CALL, CATALOG, MPM), saying so, because PyTake does not fill their send
parameters; `render_components()` refuses a synced template with named parameters or a PRODUCT header.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from typing import Any, Callable, Mapping

from shared.errors import InvalidInputError


class TemplateDefinitionError(InvalidInputError):
    """`details["errors"]` lists every problem as `{"path": "components[1].text", "message": ...}`."""

    code = "invalid_template"


class TemplateVariablesError(InvalidInputError):
    """`details["errors"]` lists every problem as `{"component", "variable", "problem", "expected", "message"}`.

    `problem` is "missing", "extra" or "invalid"; `expected` is how many variables the component takes.
    """

    code = "template_variables_mismatch"


CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
MEDIA_HEADER_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
HEADER_FORMATS = ("TEXT", *MEDIA_HEADER_FORMATS, "LOCATION")
UNSUPPORTED_HEADER_FORMATS = ("GIF", "PRODUCT")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "OTP": 1}
UNSUPPORTED_BUTTON_TYPES = ("FLOW", "VOICE_CALL", "CATALOG", "MPM", "SPM")
OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
# reference §7 (message_send_ttl_seconds); marketing TTLs go through the Marketing Messages API.
TTL_RANGES = {"AUTHENTICATION": (30, 900), "UTILITY": (30, 43_200), "MARKETING": (43_200, 2_592_000)}

MAX_NAME_CHARS = 512
MAX_HEADER_TEXT_CHARS = 60
MAX_BODY_CHARS = 1024
MAX_FOOTER_CHARS = 60
MAX_BUTTONS = 10
MAX_BUTTON_LABEL_CHARS = 25
MAX_URL_CHARS = 2000
MAX_PHONE_NUMBER_CHARS = 20
MAX_CODE_CHARS = 15  # a COPY_CODE button's coupon and an authentication code
MAX_BODY_PARAMETER_CHARS = 1024
MAX_CODE_EXPIRATION_MINUTES = 90

_NAME_CHAR = re.compile(r"[a-z0-9_]")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z0-9]{2,3})?")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NUMBER = re.compile(r"[0-9]+")
# Meta refuses these in parameter values: "cannot have new-line/tab characters or more than 4 consecutive spaces".
_FORBIDDEN_WHITESPACE = (
    ("\n", "a line break"),
    ("\r", "a line break"),
    ("\t", "a tab"),
    (" " * 5, "more than 4 consecutive spaces"),
)

Add = Callable[[str, str], None]


# -- definitions ---------------------------------------------------------------------------------


def validate_template(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Check a definition for `POST /{waba_id}/message_templates`; return it normalized, or raise.

    Normalizing only upper-cases the enums (category, component and button types, header format,
    otp_type), the form Meta answers with; the name is never rewritten: a bad name is an error.
    Raises `TemplateDefinitionError` listing every problem found, not only the first.
    """
    errors: list[dict[str, str]] = []

    def add(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    if not isinstance(definition, Mapping):
        add("", "a template definition is a JSON object")
        raise _definition_error(errors)
    template = copy.deepcopy(dict(definition))

    _check_name(template.get("name"), add)
    language = template.get("language")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        add("language", f"language must be a code such as en, en_US or pt_BR, not {language!r}")
    category = _upper(template.get("category"))
    if category in CATEGORIES:
        template["category"] = category
    else:
        add("category", f"category must be one of {', '.join(CATEGORIES)}, not {template.get('category')!r}")
    _check_parameter_format(template.get("parameter_format"), add)
    if "message_send_ttl_seconds" in template:
        _check_ttl(template["message_send_ttl_seconds"], category, add)

    components = template.get("components")
    if isinstance(components, list):
        _check_components(components, category, add)
    else:
        add("components", "a template needs a list of components, with one BODY")

    if errors:
        raise _definition_error(errors)
    return template


def _definition_error(errors: list[dict[str, str]]) -> TemplateDefinitionError:
    summary = "; ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors)
    return TemplateDefinitionError(f"invalid template: {summary}", details={"errors": errors})


def _check_components(components: list, category: str | None, add: Add) -> None:
    first_of: dict[str, int] = {}
    for index, component in enumerate(components):
        path = f"components[{index}]"
        if not isinstance(component, dict):
            add(path, "each component is a JSON object")
            continue
        kind = _upper(component.get("type"))
        if kind not in COMPONENT_TYPES:
            add(f"{path}.type", f"type must be one of {', '.join(COMPONENT_TYPES)}, not {component.get('type')!r}")
            continue
        component["type"] = kind
        if kind in first_of:
            add(path, f"a template takes at most one {kind} (the first is components[{first_of[kind]}])")
            continue
        first_of[kind] = index
        _COMPONENT_CHECKS[kind](component, path, category, add)
    if "BODY" not in first_of:
        add("components", "a template needs exactly one BODY component")


def _check_name(name: Any, add: Add) -> None:
    if not isinstance(name, str) or not name:
        add("name", "a template needs a name")
        return
    if len(name) > MAX_NAME_CHARS:
        add("name", f"name is limited to {MAX_NAME_CHARS} characters, got {len(name)}")
    bad = sorted({char for char in name if not _NAME_CHAR.fullmatch(char)})
    if bad:
        found = ", ".join(repr(char) for char in bad)
        suggestion = re.sub(r"[\s-]+", "_", name.strip().lower())
        hint = f", e.g. {suggestion!r}" if all(_NAME_CHAR.fullmatch(char) for char in suggestion) else ""
        add("name", f"name may contain only lowercase letters, digits and underscores (found {found}){hint}")


def _check_parameter_format(value: Any, add: Add) -> None:
    if value is None or str(value).lower() == "positional":
        return
    if str(value).lower() == "named":
        add("parameter_format", "named parameters are not supported by PyTake; use positional {{1}}, {{2}}…")
    else:
        add("parameter_format", f"parameter_format must be 'positional', not {value!r}")


def _check_ttl(ttl: Any, category: str | None, add: Add) -> None:
    low, high = TTL_RANGES.get(category or "", (None, None))
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        add("message_send_ttl_seconds", "message_send_ttl_seconds must be a whole number of seconds")
    elif low is not None and not low <= ttl <= high:
        add("message_send_ttl_seconds", f"for {category} templates it must be {low} to {high} seconds, got {ttl}")


def _check_header(header: dict, path: str, category: str | None, add: Add) -> None:
    if category == "AUTHENTICATION":
        add(path, "AUTHENTICATION templates take no HEADER")
        return
    header_format = _upper(header.get("format"))
    if header_format in UNSUPPORTED_HEADER_FORMATS:
        add(f"{path}.format", f"{header_format} headers are not supported by PyTake")
        return
    if header_format not in HEADER_FORMATS:
        add(f"{path}.format", f"header format must be one of {', '.join(HEADER_FORMATS)}, not {header.get('format')!r}")
        return
    header["format"] = header_format
    example = _example(header, path, add)

    if header_format == "TEXT":
        text = header.get("text")
        if not isinstance(text, str) or not text.strip():
            add(f"{path}.text", "a TEXT header needs its text")
            return
        if len(text) > MAX_HEADER_TEXT_CHARS:
            add(f"{path}.text", f"header text is limited to {MAX_HEADER_TEXT_CHARS} characters, got {len(text)}")
        numbers = _numbers(text, f"{path}.text", add)
        if len(numbers) > 1:
            add(f"{path}.text", f"a TEXT header takes at most one variable, found {len(numbers)}")
            return
        if numbers and numbers != [1]:
            add(f"{path}.text", f"the header's variable must be {{{{1}}}}, not {{{{{numbers[0]}}}}}")
        _check_text_examples(example.get("header_text"), len(numbers), f"{path}.example.header_text", add, nested=False)
    elif header_format in MEDIA_HEADER_FORMATS:
        handles = example.get("header_handle")
        if not (isinstance(handles, list) and handles and all(_filled(handle) for handle in handles)):
            add(
                f"{path}.example.header_handle",
                f"the {header_format} header needs a sample: example.header_handle from the Resumable Upload API",
            )


def _check_body(body: dict, path: str, category: str | None, add: Add) -> None:
    text = body.get("text")
    if category == "AUTHENTICATION":
        # Meta writes the body of an authentication template ("<code> is your verification code.").
        if text is not None:
            add(f"{path}.text", "AUTHENTICATION templates use Meta's fixed body; set only add_security_recommendation")
        if not isinstance(body.get("add_security_recommendation", False), bool):
            add(f"{path}.add_security_recommendation", "add_security_recommendation must be true or false")
        return
    if not isinstance(text, str) or not text.strip():
        add(f"{path}.text", "the BODY needs its text")
        return
    if len(text) > MAX_BODY_CHARS:
        add(f"{path}.text", f"body text is limited to {MAX_BODY_CHARS} characters, got {len(text)}")
    numbers = _numbers(text, f"{path}.text", add)
    _check_sequence(numbers, f"{path}.text", add)
    _check_variable_placement(text, f"{path}.text", add)
    _check_variable_density(text, len(numbers), f"{path}.text", add)
    example = _example(body, path, add)
    _check_text_examples(example.get("body_text"), len(set(numbers)), f"{path}.example.body_text", add, nested=True)


def _check_footer(footer: dict, path: str, category: str | None, add: Add) -> None:
    text = footer.get("text")
    if category == "AUTHENTICATION":
        if text is not None:
            add(f"{path}.text", "AUTHENTICATION templates use Meta's fixed footer; set only code_expiration_minutes")
        minutes = footer.get("code_expiration_minutes")
        if minutes is not None and (
            not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_CODE_EXPIRATION_MINUTES
        ):
            add(f"{path}.code_expiration_minutes", f"must be 1 to {MAX_CODE_EXPIRATION_MINUTES} minutes")
        return
    if not isinstance(text, str) or not text.strip():
        add(f"{path}.text", "a FOOTER needs its text")
        return
    if len(text) > MAX_FOOTER_CHARS:
        add(f"{path}.text", f"footer text is limited to {MAX_FOOTER_CHARS} characters, got {len(text)}")
    if _PLACEHOLDER.search(text):
        add(f"{path}.text", "a FOOTER takes no variables")


def _check_buttons(component: dict, path: str, category: str | None, add: Add) -> None:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        add(f"{path}.buttons", "a BUTTONS component needs at least one button")
        return
    if len(buttons) > MAX_BUTTONS:
        add(f"{path}.buttons", f"a template takes at most {MAX_BUTTONS} buttons, got {len(buttons)}")
    kinds: list[str] = []
    for index, button in enumerate(buttons):
        button_path = f"{path}.buttons[{index}]"
        if not isinstance(button, dict):
            add(button_path, "each button is a JSON object")
            continue
        kind = _upper(button.get("type"))
        if kind in UNSUPPORTED_BUTTON_TYPES:
            add(f"{button_path}.type", f"{kind} buttons are not supported by PyTake")
            continue
        if kind not in BUTTON_LIMITS:
            add(f"{button_path}.type", f"type must be one of {', '.join(BUTTON_LIMITS)}, not {button.get('type')!r}")
            continue
        button["type"] = kind
        kinds.append(kind)
        _BUTTON_CHECKS[kind](button, button_path, add)

    for kind, limit in BUTTON_LIMITS.items():
        if kinds.count(kind) > limit:
            add(f"{path}.buttons", f"a template takes at most {limit} {kind} button(s), got {kinds.count(kind)}")
    is_quick_reply = [kind == "QUICK_REPLY" for kind in kinds]
    groups = 1 + sum(1 for a, b in zip(is_quick_reply, is_quick_reply[1:]) if a != b)
    if groups > 2:
        add(
            f"{path}.buttons",
            "quick replies must be grouped together, before or after the other buttons "
            "(QUICK_REPLY, QUICK_REPLY, URL is valid; QUICK_REPLY, URL, QUICK_REPLY is not)",
        )
    if category == "AUTHENTICATION" and kinds.count("OTP") != 1:
        add(f"{path}.buttons", "an AUTHENTICATION template takes exactly one OTP button")
    elif category == "AUTHENTICATION" and len(kinds) > 1:
        add(f"{path}.buttons", "an AUTHENTICATION template takes only its OTP button")
    elif category != "AUTHENTICATION" and "OTP" in kinds:
        add(f"{path}.buttons", "OTP buttons belong only to AUTHENTICATION templates")


def _check_label(button: dict, path: str, add: Add, *, required: bool = True) -> None:
    text = button.get("text")
    if text is None and not required:
        return
    if not isinstance(text, str) or not text.strip():
        add(f"{path}.text", "the button needs its label (text)")
    elif len(text) > MAX_BUTTON_LABEL_CHARS:
        add(f"{path}.text", f"button labels are limited to {MAX_BUTTON_LABEL_CHARS} characters, got {len(text)}")


def _check_quick_reply(button: dict, path: str, add: Add) -> None:
    _check_label(button, path, add)


def _check_url_button(button: dict, path: str, add: Add) -> None:
    _check_label(button, path, add)
    url = button.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        add(f"{path}.url", "a URL button needs an http(s) url")
        return
    if len(url) > MAX_URL_CHARS:
        add(f"{path}.url", f"button urls are limited to {MAX_URL_CHARS} characters, got {len(url)}")
    numbers = _numbers(url, f"{path}.url", add)
    if numbers and (numbers != [1] or not url.endswith("{{1}}")):
        add(f"{path}.url", "a URL button takes one variable, {{1}}, at the very end of the url")
    example = button.get("example")
    if numbers and not (isinstance(example, list) and len(example) == 1 and _filled(example[0])):
        add(f"{path}.example", 'a url with {{1}} needs an example: ["https://…/full-url-with-a-sample-value"]')
    elif not numbers and example is not None:
        add(f"{path}.example", "an example was given but the url has no {{1}}")


def _check_phone_button(button: dict, path: str, add: Add) -> None:
    _check_label(button, path, add)
    phone = button.get("phone_number")
    if not isinstance(phone, str) or not phone.strip():
        add(f"{path}.phone_number", "a PHONE_NUMBER button needs its phone_number")
    elif len(phone) > MAX_PHONE_NUMBER_CHARS:
        add(f"{path}.phone_number", f"phone_number is limited to {MAX_PHONE_NUMBER_CHARS} characters, got {len(phone)}")


def _check_copy_code_button(button: dict, path: str, add: Add) -> None:
    example = button.get("example")
    if not isinstance(example, str) or not example.strip():
        add(f"{path}.example", "a COPY_CODE button needs an example code")
    elif len(example) > MAX_CODE_CHARS:
        add(f"{path}.example", f"copy codes are limited to {MAX_CODE_CHARS} characters, got {len(example)}")


def _check_otp_button(button: dict, path: str, add: Add) -> None:
    _check_label(button, path, add, required=False)
    otp_type = _upper(button.get("otp_type"))
    if otp_type not in OTP_TYPES:
        add(f"{path}.otp_type", f"otp_type must be one of {', '.join(OTP_TYPES)}, not {button.get('otp_type')!r}")
        return
    button["otp_type"] = otp_type
    if otp_type in ("ONE_TAP", "ZERO_TAP"):
        apps = button.get("supported_apps")
        legacy = button.get("package_name") and button.get("signature_hash")
        if not legacy and not (
            isinstance(apps, list)
            and apps
            and all(isinstance(app, dict) and app.get("package_name") and app.get("signature_hash") for app in apps)
        ):
            add(f"{path}.supported_apps", f"a {otp_type} button needs apps, each with package_name and signature_hash")
    if otp_type == "ZERO_TAP" and button.get("zero_tap_terms_accepted") is not True:
        add(f"{path}.zero_tap_terms_accepted", "ZERO_TAP buttons need zero_tap_terms_accepted: true")


_COMPONENT_CHECKS = {"HEADER": _check_header, "BODY": _check_body, "FOOTER": _check_footer, "BUTTONS": _check_buttons}
_BUTTON_CHECKS = {
    "QUICK_REPLY": _check_quick_reply,
    "URL": _check_url_button,
    "PHONE_NUMBER": _check_phone_button,
    "COPY_CODE": _check_copy_code_button,
    "OTP": _check_otp_button,
}


def _numbers(text: str, path: str, add: Add) -> list[int]:
    """The numbers of the text's placeholders, in order of appearance; malformed ones are reported."""
    numbers = []
    for match in _PLACEHOLDER.finditer(text):
        if _NUMBER.fullmatch(match.group(1)):
            numbers.append(int(match.group(1)))
        else:
            add(path, f"{match.group(0)} is not a placeholder: write variables as {{{{1}}}}, {{{{2}}}}…")
    return numbers


def _check_sequence(numbers: list[int], path: str, add: Add) -> None:
    # The order of appearance is free ("{{2}} … {{1}}" is accepted); the numbers must be 1..n.
    distinct = sorted(set(numbers))
    if distinct != list(range(1, len(distinct) + 1)):
        found = ", ".join(f"{{{{{n}}}}}" for n in distinct)
        add(path, f"variables must be numbered from {{{{1}}}} with no gaps, found {found}")


def _check_variable_placement(text: str, path: str, add: Add) -> None:
    matches = list(_PLACEHOLDER.finditer(text))
    if not matches:
        return
    # Trailing punctuation does not count as text: Meta treats "… {{2}}." as ending with a variable.
    if not _has_words(text[: matches[0].start()]) or not _has_words(text[matches[-1].end() :]):
        add(path, "variables can't be at the start or end of the body (Meta error 2388299); add text around them")
    for before, after in zip(matches, matches[1:]):
        if not text[before.end() : after.start()].strip():
            add(path, f"{before.group(0)} and {after.group(0)} are adjacent; put text between them")


def _check_variable_density(text: str, count: int, path: str, add: Add) -> None:
    # Meta publishes no ratio for 2388293 ("too many variables for its length"); BSPs observe that
    # a body needs at least 2 words of its own per variable, plus one.
    words = sum(1 for token in _PLACEHOLDER.sub(" ", text).split() if _has_words(token))
    if count and words < 2 * count + 1:
        add(
            path,
            f"too many variables for the body's length (Meta error 2388293): {count} variable(s) need at least "
            f"{2 * count + 1} other words, found {words}",
        )


def _has_words(text: str) -> bool:
    return any(not (char.isspace() or unicodedata.category(char).startswith("P")) for char in text)


def _example(component: dict, path: str, add: Add) -> dict:
    example = component.get("example", {})
    if isinstance(example, dict):
        return example
    add(f"{path}.example", "example must be a JSON object")
    return {}


def _check_text_examples(values: Any, count: int, path: str, add: Add, *, nested: bool) -> None:
    """`header_text` is ["v"]; `body_text` is [["v1", "v2"]]: one sample per variable, none blank."""
    shape = '[["sample 1", "sample 2"]]' if nested else '["sample"]'
    if count == 0:
        if values:
            add(path, "examples were given but the text has no variables")
        return
    rows = values if nested else [values]
    if not (isinstance(values, list) and values and all(isinstance(row, list) for row in rows)):
        add(path, f"every variable needs an example: give {shape} with {count} value(s)")
        return
    for row in rows:
        if len(row) != count or not all(_filled(value) for value in row):
            add(path, f"every variable needs an example: {count} non-empty value(s) expected, got {len(row)}")
            return


# -- sending -------------------------------------------------------------------------------------


def placeholders(definition: Mapping[str, Any]) -> dict[str, Any]:
    """What a send of this template needs from each recipient.

    `{"header": 1, "header_format": "TEXT", "body": 3, "buttons": {0: 1}}`: `header` is 1 for a TEXT
    header with {{1}} and for a media or LOCATION header (one media object), else 0; `header_format` is
    None without a header; `buttons` maps a button's index to its required value count (a URL with
    {{1}}, a COPY_CODE coupon, an OTP code). Quick-reply payloads are optional and not listed.
    """
    header, header_format, body, buttons = 0, None, 0, {}
    authentication = _upper(definition.get("category")) == "AUTHENTICATION"
    for component in _components(definition):
        kind = _upper(component.get("type"))
        if kind == "HEADER":
            header_format = _upper(component.get("format"))
            header = _variable_count(component.get("text")) if header_format == "TEXT" else 1
        elif kind == "BODY":
            body = 1 if authentication else _variable_count(component.get("text"))
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or ()):
                if _button_needs_value(button):
                    buttons[index] = 1
    return {"header": header, "header_format": header_format, "body": body, "buttons": buttons}


def render_components(definition: Mapping[str, Any], variables: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The Graph `template.components` array for one recipient of an APPROVED template.

    `variables`, one recipient's values (see `placeholders()` for what a template needs):

        {
          "header": ["Summer sale"],                      # TEXT header: the value of its {{1}}
                 or {"link": "https://…/a.jpg"}           # IMAGE / VIDEO / DOCUMENT: "link" or "id",
                 or {"id": "1037543291543636", "filename": "invoice.pdf"}   # DOCUMENT may add "filename"
                 or {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Hacker Way"},
          "body": ["Ana", "ord-8812"],                    # values of {{1}}, {{2}}… in that order
          "buttons": {"0": ["ord-8812"],                  # by button index: a URL button's {{1}} suffix,
                      "1": ["SAVE25"],                    #   a COPY_CODE coupon, an OTP code,
                      "2": ["STOP_PROMOS"]},              #   or a QUICK_REPLY payload (optional)
        }

    or, for a template whose only variables are in its body, flat: `{"1": "Ana", "2": "ord-8812"}`.
    An AUTHENTICATION template takes the code twice: `{"body": [code], "buttons": {"0": [code]}}`.

    Values are stringified; None, "" and blanks count as missing. Raises `TemplateVariablesError`
    naming every missing, extra or invalid variable with its component and the expected count, and
    `TemplateDefinitionError` for a template PyTake cannot fill (one synced from Meta that uses named
    parameters or a PRODUCT header), rather than sending it without its values.
    """
    _refuse_unsupported(definition)
    needs = placeholders(definition)
    problems: list[dict[str, Any]] = []
    given = _structured_variables(variables or {}, problems)
    rendered: list[dict[str, Any]] = []

    header = _render_header(needs, given.get("header"), problems)
    if header is not None:
        rendered.append({"type": "header", "parameters": [header]})

    body_values = _text_values("body", given.get("body"), needs["body"], problems)
    for number, value in enumerate(body_values, start=1):
        _check_text_parameter("body", number, value, problems, max_chars=MAX_BODY_PARAMETER_CHARS)
    if body_values:
        rendered.append({"type": "body", "parameters": [{"type": "text", "text": v} for v in body_values]})

    rendered.extend(_render_buttons(definition, given.get("buttons"), needs["buttons"], problems))

    if problems:
        raise TemplateVariablesError(
            "template variables do not match the template: " + "; ".join(p["message"] for p in problems),
            details={"errors": problems},
        )
    return rendered


def _refuse_unsupported(definition: Mapping[str, Any]) -> None:
    errors = []
    if str(definition.get("parameter_format") or "").lower() == "named":
        errors.append({"path": "parameter_format", "message": "named parameters are not supported by PyTake"})
    for index, component in enumerate(_components(definition)):
        if _upper(component.get("format")) == "PRODUCT":
            errors.append({"path": f"components[{index}].format", "message": "PRODUCT headers are not supported"})
        text = component.get("text")
        if isinstance(text, str) and any(not _NUMBER.fullmatch(token) for token in _PLACEHOLDER.findall(text)):
            message = "only positional {{1}}, {{2}}… are supported"
            errors.append({"path": f"components[{index}].text", "message": message})
    if errors:
        raise _definition_error(errors)


def _structured_variables(variables: Mapping[str, Any], problems: list) -> dict[str, Any]:
    if not isinstance(variables, Mapping):
        _problem(problems, "variables", "", "invalid", 0, "variables must be a JSON object")
        return {}
    keys = {str(key) for key in variables}
    if keys & {"header", "body", "buttons"}:
        for key in sorted(keys - {"header", "body", "buttons"}):
            _problem(
                problems, key, "", "extra", 0,
                f"unknown key {key!r}: variables take 'header', 'body' and 'buttons' "
                "(a flat {'1': …} form is only for body-only templates, on its own)",
            )
        return {str(key): value for key, value in variables.items()}
    numbered: dict[int, Any] = {}
    for key, value in variables.items():
        if _NUMBER.fullmatch(str(key)) and int(key) > 0:
            numbered[int(key)] = value
        else:
            message = f"unknown key {str(key)!r}: flat variables are numbered '1', '2'…"
            _problem(problems, str(key), "", "extra", 0, message)
    return {"body": numbered}


def _text_values(component: str, values: Any, expected: int, problems: list) -> list[str]:
    """The component's values for {{1}}..{{expected}}, stringified; problems for missing and extra ones."""
    if values is None:
        values = {}
    elif isinstance(values, (list, tuple)):
        values = dict(enumerate(values, start=1))
    elif isinstance(values, Mapping):  # the flat form, numbered from 1
        values = {int(key) if _NUMBER.fullmatch(str(key)) else key: value for key, value in values.items()}
    else:
        takes = f"a list of {expected} value(s)" if expected else "no variables"
        message = f"{component} takes {takes}, not {type(values).__name__}"
        _problem(problems, component, "", "invalid", expected, message)
        return []
    texts = []
    for number in range(1, expected + 1):
        value = values.get(number)
        if not _filled(value):
            _problem(
                problems, component, f"{{{{{number}}}}}", "missing", expected,
                f"{component} {{{{{number}}}}} is missing ({component} takes {_count_words(expected)})",
            )
        else:
            texts.append(str(value))
    for key in values:
        if not isinstance(key, int):
            _problem(
                problems, component, str(key), "extra", expected,
                f"{component} has an unknown variable {str(key)!r}; variables are numbered 1, 2…",
            )
    for number in sorted(n for n in values if isinstance(n, int) and not 1 <= n <= expected):
        _problem(
            problems, component, f"{{{{{number}}}}}", "extra", expected,
            f"{component} {{{{{number}}}}} is extra ({component} takes {_count_words(expected)})",
        )
    return texts if len(texts) == expected else []


def _check_text_parameter(component: str, number: int, value: str, problems: list, *, max_chars: int | None) -> None:
    variable = f"{{{{{number}}}}}"
    for fragment, what in _FORBIDDEN_WHITESPACE:
        if fragment in value:
            _problem(
                problems, component, variable, "invalid", None,
                f"{component} {variable} contains {what}; Meta refuses line breaks, tabs and more than "
                "4 consecutive spaces in parameters",
            )
            break
    if max_chars is not None and len(value) > max_chars:
        _problem(
            problems, component, variable, "invalid", None,
            f"{component} {variable} is {len(value)} characters long; the limit is {max_chars}",
        )


def _render_header(needs: dict, value: Any, problems: list) -> dict[str, Any] | None:
    header_format = needs["header_format"]
    if header_format is None or (header_format == "TEXT" and needs["header"] == 0):
        if value is not None:
            _problem(problems, "header", "", "extra", 0, "header is extra: this template's header takes no variables")
        return None
    if header_format == "TEXT":
        texts = _text_values("header", value, 1, problems)
        if texts:
            _check_text_parameter("header", 1, texts[0], problems, max_chars=None)
            return {"type": "text", "text": texts[0]}
        return None
    kind = header_format.lower()
    if header_format == "LOCATION":
        shape = "{'latitude': …, 'longitude': …, 'name'?: …, 'address'?: …}"
        allowed, required = {"latitude", "longitude", "name", "address"}, ("latitude", "longitude")
        valid = isinstance(value, Mapping) and all(value.get(key) is not None for key in required)
    else:
        shape = "{'link': …} or {'id': …}" + (" (and an optional 'filename')" if header_format == "DOCUMENT" else "")
        allowed = {"link", "id", "filename"} if header_format == "DOCUMENT" else {"link", "id"}
        valid = isinstance(value, Mapping) and _filled(value.get("link")) != _filled(value.get("id"))
    if value is None:
        _problem(problems, "header", kind, "missing", 1, f"header {kind} is missing: the header needs {shape}")
        return None
    if not valid or set(value) - allowed:
        _problem(problems, "header", kind, "invalid", 1, f"header {kind} is invalid: the header needs {shape}")
        return None
    return {"type": kind, kind: {key: value[key] for key in value if value[key] is not None}}


def _render_buttons(definition: Mapping[str, Any], given: Any, needs: dict[int, int], problems: list) -> list[dict]:
    buttons = next(
        (c.get("buttons") or [] for c in _components(definition) if _upper(c.get("type")) == "BUTTONS"), []
    )
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        _problem(problems, "buttons", "", "invalid", None, "buttons takes an object of button index → [value]")
        return []
    by_index: dict[int, Any] = {}
    for key, value in given.items():
        if _NUMBER.fullmatch(str(key)) and int(key) < len(buttons):
            by_index[int(key)] = value
        else:
            _problem(
                problems, f"buttons[{key}]", "", "extra", None,
                f"buttons[{key}] is extra: the template has {len(buttons)} button(s), indexed from 0",
            )

    rendered = []
    for index, button in enumerate(buttons):
        component = f"buttons[{index}]"
        kind = _upper(button.get("type")) if isinstance(button, Mapping) else None
        if kind == "QUICK_REPLY":
            if index not in by_index:
                continue
            payloads = _text_values(component, by_index[index], 1, problems)
            if payloads:
                rendered.append(_button("quick_reply", index, {"type": "payload", "payload": payloads[0]}))
        elif index in needs:
            values = _text_values(component, by_index.get(index), needs[index], problems)
            if not values:
                continue
            code = values[0]
            if kind in ("COPY_CODE", "OTP") and len(code) > MAX_CODE_CHARS:
                message = f"{component} {{{{1}}}} is {len(code)} characters long; the limit is {MAX_CODE_CHARS}"
                _problem(problems, component, "{{1}}", "invalid", 1, message)
            if kind == "COPY_CODE":
                rendered.append(_button("copy_code", index, {"type": "coupon_code", "coupon_code": code}))
            else:  # a URL suffix, or an authentication code, which Meta takes as a url-button parameter
                rendered.append(_button("url", index, {"type": "text", "text": code}))
        elif index in by_index:
            _problem(problems, component, "", "extra", 0, f"{component} is extra: a {kind} button takes no variables")
    return rendered


def _button(sub_type: str, index: int, parameter: dict[str, Any]) -> dict[str, Any]:
    return {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [parameter]}


def _button_needs_value(button: Any) -> bool:
    if not isinstance(button, Mapping):
        return False
    kind = _upper(button.get("type"))
    if kind == "URL":
        return _variable_count(button.get("url")) > 0
    return kind in ("COPY_CODE", "OTP")


def _problem(problems: list, component: str, variable: str, problem: str, expected: int | None, message: str) -> None:
    problems.append(
        {"component": component, "variable": variable, "problem": problem, "expected": expected, "message": message}
    )


def _count_words(count: int) -> str:
    return "no variables" if count == 0 else f"{count} variable{'s' if count > 1 else ''}"


def _variable_count(text: Any) -> int:
    if not isinstance(text, str):
        return 0
    return max((int(token) for token in _PLACEHOLDER.findall(text) if _NUMBER.fullmatch(token)), default=0)


def _components(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    components = definition.get("components") if isinstance(definition, Mapping) else None
    return [c for c in components or () if isinstance(c, Mapping)]


def _filled(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None
