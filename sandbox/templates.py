"""Message templates: checking a definition on create, the review rule, and matching a send against it.

Review rule (the sandbox's stand-in for Meta's reviewers): a template whose name contains "reject" is
REJECTED with reason INVALID_FORMAT; every other well-formed template is APPROVED. Malformed definitions
(bad name, unknown category, a body that starts or ends with a variable, ...) are refused on create with
code 100, as Meta does, and never reach review.
"""

from __future__ import annotations

import re

from sandbox.errors import GraphError, invalid
from sandbox.state import Template

NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,3})?$")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT")
HEADER_PARAMETER = {"IMAGE": "image", "VIDEO": "video", "GIF": "video", "DOCUMENT": "document", "LOCATION": "location"}
BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "OTP": 1}
OTHER_BUTTONS = ("FLOW", "VOICE_CALL", "CATALOG", "MPM")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

REJECTION_MARKER = "reject"


def placeholders(text: str | None) -> list[str]:
    """Distinct variable names in order of first appearance: ['1', '2'] or ['first_name']."""
    names: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in names:
            names.append(name)
    return names


def _check_variables(text: str, path: str, parameter_format: str) -> None:
    names = placeholders(text)
    if parameter_format == "POSITIONAL":
        if any(not name.isdigit() for name in names) or sorted(int(n) for n in names) != list(
            range(1, len(names) + 1)
        ):
            raise invalid(f"{path}: positional variables must be {{{{1}}}} to {{{{n}}}} in sequence.")
    elif any(not SNAKE.match(name) for name in names):
        raise invalid(f"{path}: named variables must be lowercase snake_case names.")


def validate_definition(body) -> dict:
    """Check a `POST /{waba_id}/message_templates` body; answer the fields to store or raise code 100."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    name = body.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise invalid("The parameter name is required and may contain only lowercase letters, digits and _.")
    language = body.get("language")
    if not isinstance(language, str) or not LANGUAGE.match(language):
        raise invalid("The parameter language is required and must be a language code such as en_US.")
    category = str(body.get("category", "")).upper()
    if category not in CATEGORIES:
        raise invalid(f"The parameter category must be one of {{{', '.join(CATEGORIES)}}}.")
    parameter_format = str(body.get("parameter_format", "positional")).upper()
    if parameter_format not in ("POSITIONAL", "NAMED"):
        raise invalid("The parameter parameter_format must be 'positional' or 'named'.")
    components = body.get("components")
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid("The parameter components is required and must be a list of objects.")

    normalized = []
    seen: set[str] = set()
    for component in components:
        kind = str(component.get("type", "")).upper()
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            raise invalid("components[].type must be one of {HEADER, BODY, FOOTER, BUTTONS}.")
        if kind in seen:
            raise invalid(f"A template has at most one {kind} component.")
        seen.add(kind)
        component = {**component, "type": kind}
        CHECKS[kind](component, category, parameter_format)
        normalized.append(component)
    if "BODY" not in seen:
        raise invalid("A template needs a BODY component.")
    return {
        "name": name,
        "language": language,
        "category": category,
        "parameter_format": parameter_format,
        "components": normalized,
    }


def _check_header(component: dict, category: str, parameter_format: str) -> None:
    header_format = str(component.get("format", "")).upper()
    if header_format not in HEADER_FORMATS:
        raise invalid(f"HEADER.format must be one of {{{', '.join(HEADER_FORMATS)}}}.")
    component["format"] = header_format
    if header_format == "TEXT":
        text = component.get("text")
        if not isinstance(text, str) or not text or len(text) > 60:
            raise invalid("HEADER.text is required and must be at most 60 characters long.")
        if len(placeholders(text)) > 1:
            raise invalid("HEADER.text may contain at most one variable.")
        _check_variables(text, "HEADER.text", parameter_format)


def _check_body(component: dict, category: str, parameter_format: str) -> None:
    text = component.get("text")
    if text is None and category == "AUTHENTICATION":
        return  # Meta writes the authentication body itself ("{{1}} is your verification code.").
    if not isinstance(text, str) or not text or len(text) > 1024:
        raise invalid("BODY.text is required and must be at most 1024 characters long.")
    _check_variables(text, "BODY.text", parameter_format)
    stripped = text.strip()
    if PLACEHOLDER.match(stripped) or re.search(r"\{\{[^{}]+\}\}$", stripped):
        raise invalid("Variables can't be at the start or end of the template.", subcode=2388299)


def _check_footer(component: dict, category: str, parameter_format: str) -> None:
    text = component.get("text")
    if text is None and category == "AUTHENTICATION":
        return
    if not isinstance(text, str) or not text or len(text) > 60:
        raise invalid("FOOTER.text is required and must be at most 60 characters long.")
    if placeholders(text):
        raise invalid("FOOTER.text may not contain variables.")


def _check_buttons(component: dict, category: str, parameter_format: str) -> None:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 10:
        raise invalid("BUTTONS.buttons must be a list of 1 to 10 buttons.")
    counts: dict[str, int] = {}
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper() if isinstance(button, dict) else ""
        if kind not in BUTTON_LIMITS and kind not in OTHER_BUTTONS:
            raise invalid(f"BUTTONS.buttons[{index}].type is not a known button type.")
        button["type"] = kind
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] > BUTTON_LIMITS.get(kind, 10):
            raise invalid(f"A template may have at most {BUTTON_LIMITS[kind]} {kind} button(s).")
        text = button.get("text")
        if kind != "OTP" and (not isinstance(text, str) or not text or len(text) > 25):
            raise invalid(f"BUTTONS.buttons[{index}].text is required and must be at most 25 characters long.")
        if kind == "URL":
            url = button.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise invalid(f"BUTTONS.buttons[{index}].url must be an http(s) URL.")
            variables = placeholders(url)
            if len(variables) > 1 or (variables and not re.search(r"\{\{[^{}]+\}\}$", url)):
                raise invalid(f"BUTTONS.buttons[{index}].url may have one variable, at its end.")
        if kind == "OTP" and button.get("otp_type") not in ("COPY_CODE", "ONE_TAP", "ZERO_TAP"):
            raise invalid(f"BUTTONS.buttons[{index}].otp_type must be COPY_CODE, ONE_TAP or ZERO_TAP.")
    if category == "AUTHENTICATION" and counts.get("OTP", 0) != 1:
        raise invalid("An AUTHENTICATION template needs exactly one OTP button.")


CHECKS = {"HEADER": _check_header, "BODY": _check_body, "FOOTER": _check_footer, "BUTTONS": _check_buttons}


def review(template: Template) -> tuple[str, str]:
    """(status, reason) once the simulated review is over; see the module docstring for the rule."""
    if REJECTION_MARKER in template.name:
        return "REJECTED", "INVALID_FORMAT"
    return "APPROVED", "NONE"


# Sending --------------------------------------------------------------------


def find_for_send(templates, waba_id: str, name: str, language: str) -> Template:
    """The sendable template or the error Meta gives (132001 missing / not approved, 132015 paused, 132016 disabled)."""
    match = next(
        (t for t in templates if t.waba_id == waba_id and t.name == name and t.language == language), None
    )
    if match is None:
        raise GraphError(132001, f"template name ({name}) does not exist in {language}")
    if match.status == "PAUSED":
        raise GraphError(132015, f"template {name} ({language}) is paused because of low quality")
    if match.status == "DISABLED":
        raise GraphError(132016, f"template {name} ({language}) has been disabled")
    if match.status != "APPROVED":
        raise GraphError(132001, f"template {name} ({language}) is {match.status}, not APPROVED")
    return match


def _component(template: Template, kind: str) -> dict | None:
    return next((c for c in template.components if c["type"] == kind), None)


def _button_requirements(template: Template) -> list[tuple[str, str | None, bool]]:
    """Per button position: (sub_type to send, parameter type, is the parameter required)."""
    buttons = (_component(template, "BUTTONS") or {}).get("buttons", [])
    requirements = []
    for button in buttons:
        kind = button["type"]
        if kind == "URL":
            requirements.append(("url", "text", bool(placeholders(button.get("url")))))
        elif kind == "OTP":
            requirements.append(("url", "text", True))  # the code goes in as a url-button parameter
        elif kind == "COPY_CODE":
            requirements.append(("copy_code", "coupon_code", True))
        elif kind == "QUICK_REPLY":
            requirements.append(("quick_reply", "payload", False))
        else:
            requirements.append((kind.lower(), None, False))
    return requirements


def check_send(template: Template, send: dict) -> None:
    """Compare the send's parameters with the approved template: 132000 on counts, 132012 on formats."""
    given: dict[str, list] = {"header": [], "body": []}
    given_buttons: dict[int, dict] = {}
    for component in send.get("components", []):
        kind = component["type"].lower()
        if kind == "button":
            given_buttons[int(component["index"])] = component
        else:
            given[kind] = component.get("parameters", [])

    header = _component(template, "HEADER")
    if header is None:
        expected_header = None
    elif header["format"] == "TEXT":
        expected_header = "text" if placeholders(header.get("text")) else None
    else:
        expected_header = HEADER_PARAMETER.get(header["format"])
    header_params = given["header"]
    expected_count = 1 if expected_header else 0
    if len(header_params) != expected_count:
        raise GraphError(132000, f"header: expected {expected_count} parameter(s), got {len(header_params)}")
    if expected_header and header_params[0]["type"] != expected_header:
        raise GraphError(132012, f"header: expected a {expected_header} parameter, got {header_params[0]['type']}")

    body = _component(template, "BODY")
    names = placeholders(body.get("text")) if body.get("text") else ["1"]
    body_params = given["body"]
    if len(body_params) != len(names):
        raise GraphError(132000, f"body: expected {len(names)} parameter(s), got {len(body_params)}")
    for parameter in body_params:
        if parameter["type"] not in ("text", "currency", "date_time"):
            raise GraphError(132012, f"body: {parameter['type']} is not a body parameter type")
    if template.parameter_format == "NAMED":
        sent_names = {parameter.get("parameter_name") for parameter in body_params}
        if sent_names != set(names):
            raise GraphError(132000, f"body: expected the named parameters {sorted(names)}")

    requirements = _button_requirements(template)
    for index, component in given_buttons.items():
        if index >= len(requirements):
            raise GraphError(132000, f"button: the template has no button at index {index}")
        sub_type, parameter_type, _ = requirements[index]
        if component["sub_type"].lower() != sub_type:
            raise GraphError(132012, f"button {index}: expected sub_type {sub_type}")
        parameters = component.get("parameters", [])
        if len(parameters) > 1 or (parameters and parameters[0]["type"] != parameter_type):
            raise GraphError(132012, f"button {index}: expected one {parameter_type} parameter")
    for index, (sub_type, _, required) in enumerate(requirements):
        if required and not given_buttons.get(index, {}).get("parameters"):
            raise GraphError(132000, f"button {index}: a {sub_type} parameter is required")
