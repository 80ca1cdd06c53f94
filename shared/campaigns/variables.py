"""A campaign's variables: each placeholder of its template mapped to a source per recipient. Pure, no I/O.

The mapping (stored as JSON on the campaign) mirrors the `variables` of `render_components()`:

    {"header": {"source": "literal", "value": "https://example.com/a.jpg"},     # IMAGE / VIDEO / DOCUMENT
            or [{"source": "contact.first_name", "fallback": "friend"}],        # TEXT header with {{1}}
     "body": [{"source": "contact.name", "fallback": "there"},                  # {{1}}, {{2}}… in order
              {"source": "attribute.order_id", "fallback": "your order"},
              {"source": "literal", "value": "SUMMER25"}],
     "buttons": {"0": [{"source": "attribute.coupon"}]}}                        # by button index

Sources: `literal` (its `value`), `contact.name`, `contact.first_name` (first word of the name),
`contact.phone` (E.164), `contact.email`, `attribute.<key>` (a contact attribute). An entry may add a
`fallback`, used when the source is empty for a recipient. A media header's value (or source) is a
link (http/https) or an uploaded media id, or a literal `{"link"|"id": …, "filename"?: …}`; a DOCUMENT
header entry may add `filename`. A LOCATION header takes a literal `{"latitude", "longitude", …}`.
A QUICK_REPLY button may take an optional payload the same way (e.g. to attribute clicks).

`check_mapping()` lists every problem before anything is sent; `compile_mapping()` turns a checked
mapping into a resolver that costs a few microseconds per recipient; `resolve()` is the one-off form.
Problem paths count placeholders from 1, like the template: "body.2" is {{2}}, "buttons.0.1" is
{{1}} of button 0, "header.1" is a TEXT header's {{1}}, "header" a media or location header.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from shared.whatsapp.templates import placeholders

CONTACT_SOURCES = ("contact.name", "contact.first_name", "contact.phone", "contact.email")
SOURCES = ("literal", *CONTACT_SOURCES)
ATTRIBUTE_PREFIX = "attribute."
ENTRY_KEYS = frozenset({"source", "value", "fallback", "filename"})
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
# Meta refuses these in parameter values (reference §3, 132000-family): checked up front for literals
# and fallbacks, collapsed to one space in recipients' own data.
_FORBIDDEN = ("\n", "\r", "\t", "     ")

Problem = dict[str, str]
Getter = Callable[[Mapping[str, Any]], Any]


class MissingVariable(Exception):
    """A recipient has no value for a placeholder whose entry gives no fallback: suppress them."""

    reason = "missing_variable"

    def __init__(self, field: str, source: str):
        super().__init__(f"{field}: {source} is empty for this recipient and has no fallback")
        self.field = field
        self.source = source


# -- checking ---------------------------------------------------------------------------------------


def check_mapping(
    definition: Mapping[str, Any], mapping: Any, *, attribute_keys: set[str] | None = None
) -> list[Problem]:
    """Every problem of `mapping` against the template `definition`; an empty list means it is fine.

    Each problem is `{"field", "code", "message"}`; codes: missing (a placeholder without an entry),
    unknown_variable (an entry the template does not have), unknown_source, unknown_attribute (not
    defined for the organization; checked only when `attribute_keys` is given), missing_value (a
    literal without its value), missing_media (a media header without a link or id), invalid_value
    (a literal or fallback Meta would refuse), invalid (the wrong JSON shape).
    """
    problems: list[Problem] = []

    def add(field: str, code: str, message: str) -> None:
        problems.append({"field": field, "code": code, "message": message})

    if not isinstance(mapping, Mapping):
        add("", "invalid", "variables must be a JSON object with header, body and buttons")
        return problems
    for key in sorted(set(map(str, mapping)) - {"header", "body", "buttons"}):
        add(key, "unknown_variable", f"{key!r} is not part of a template: variables take header, body and buttons")
    needs = placeholders(definition)
    checker = _EntryChecker(add, attribute_keys)
    _check_header(needs, mapping.get("header"), checker, add)
    _check_list("body", mapping.get("body"), needs["body"], checker, add)
    _check_buttons(_button_kinds(definition), needs["buttons"], mapping.get("buttons"), checker, add)
    return problems


class _EntryChecker:
    def __init__(self, add: Callable[[str, str, str], None], attribute_keys: set[str] | None):
        self.add = add
        self.attribute_keys = attribute_keys

    def __call__(self, field: str, entry: Any, *, media: str | None = None) -> None:
        add, label = self.add, _label(field)
        if not isinstance(entry, Mapping):
            add(field, "invalid", f"{label} must be an object such as {{\"source\": \"contact.name\"}}")
            return
        for key in sorted(set(map(str, entry)) - ENTRY_KEYS):
            add(field, "invalid", f"{label} has an unknown key {key!r}; entries take source, value and fallback")
        source = entry.get("source")
        if not self._source_known(field, source):
            return
        if source == "literal":
            self._check_literal(field, entry.get("value"), media)
        if "fallback" in entry:
            self._check_text(field, entry["fallback"], "fallback", media)
        if "filename" in entry and media != "DOCUMENT":
            add(field, "invalid", f"{label}: filename applies only to a DOCUMENT header")

    def _source_known(self, field: str, source: Any) -> bool:
        if source in SOURCES:
            return True
        if isinstance(source, str) and source.startswith(ATTRIBUTE_PREFIX) and source[len(ATTRIBUTE_PREFIX):]:
            key = source[len(ATTRIBUTE_PREFIX):]
            if self.attribute_keys is not None and key not in self.attribute_keys:
                message = f"{_label(field)}: the contact attribute {key!r} is not defined for this organization"
                self.add(field, "unknown_attribute", message)
            return True
        known = ", ".join((*SOURCES, "attribute.<key>"))
        self.add(field, "unknown_source", f"{_label(field)}: unknown source {source!r}; sources are {known}")
        return False

    def _check_literal(self, field: str, value: Any, media: str | None) -> None:
        label = _label(field)
        if media == "LOCATION":
            if not (isinstance(value, Mapping) and all(_number(value.get(k)) for k in ("latitude", "longitude"))):
                self.add(field, "invalid_value", f"{label}: a location header needs {{latitude, longitude}}")
            return
        if media in MEDIA_FORMATS and isinstance(value, Mapping):
            if not (_filled(value.get("link")) or _filled(value.get("id"))):
                self.add(field, "missing_media", f"the {media.lower()} header needs a link or a media id")
            return
        if not _filled(value):
            code, what = ("missing_media", "a link or a media id") if media else ("missing_value", "its value")
            self.add(field, code, f"{label}: a literal needs {what}")
            return
        self._check_text(field, value, "value", media)

    def _check_text(self, field: str, value: Any, key: str, media: str | None) -> None:
        label = _label(field)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
            self.add(field, "invalid_value", f"{label}: {key} must be a non-empty text")
        elif not media and any(fragment in str(value) for fragment in _FORBIDDEN):
            message = f"{label}: {key} contains a line break, a tab or 5 spaces in a row, which Meta refuses"
            self.add(field, "invalid_value", message)


def _check_header(needs: dict, value: Any, check: _EntryChecker, add) -> None:
    header_format = needs["header_format"]
    if header_format is None or (header_format == "TEXT" and needs["header"] == 0):
        if value is not None:
            add("header", "unknown_variable", "the template's header takes no variables")
        return
    if header_format == "TEXT":
        entries = [value] if isinstance(value, Mapping) else value
        _check_list("header", entries, 1, check, add)
    elif value is None:
        code = "missing" if header_format == "LOCATION" else "missing_media"
        add("header", code, f"the {header_format.lower()} header needs a value")
    else:
        check("header", value, media=header_format)


def _check_list(component: str, entries: Any, expected: int, check: _EntryChecker, add) -> None:
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        add(component, "invalid", f"{component} must be a list of entries, one per placeholder {{{{1}}}}, {{{{2}}}}…")
        return
    for number in range(1, max(expected, len(entries)) + 1):
        field = f"{component}.{number}"
        if number > expected:
            takes = f"takes {expected} variable{'s' if expected != 1 else ''}"
            add(field, "unknown_variable", f"the template has no {_label(field)}: its {_label(component)} {takes}")
        elif number > len(entries) or entries[number - 1] is None:
            add(field, "missing", f"{_label(field)} has no source")
        else:
            check(field, entries[number - 1])


def _check_buttons(kinds: list[str | None], needs: dict[int, int], given: Any, check: _EntryChecker, add) -> None:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        add("buttons", "invalid", "buttons must map a button's index to a list of entries")
        return
    for key in given:
        index = int(key) if str(key).isdigit() else None
        if index is None or index >= len(kinds) or (index not in needs and kinds[index] != "QUICK_REPLY"):
            what = "takes no variables" if index is not None and index < len(kinds) else "does not exist"
            add(f"buttons.{key}", "unknown_variable", f"button {key} of the template {what}")
    for index, kind in enumerate(kinds):
        entries = given.get(str(index), given.get(index))
        if index in needs or (kind == "QUICK_REPLY" and entries is not None):
            _check_list(f"buttons.{index}", entries, 1, check, add)


def _label(field: str) -> str:
    """"body.2" -> "body {{2}}", "buttons.0.1" -> "button 0 {{1}}": the words a user sees in the template."""
    parts = field.split(".")
    if parts[0] == "buttons" and len(parts) > 1:
        return f"button {parts[1]}" + (f" {{{{{parts[2]}}}}}" if len(parts) > 2 else "")
    return parts[0] + (f" {{{{{parts[1]}}}}}" if len(parts) > 1 else "")


def _button_kinds(definition: Mapping[str, Any]) -> list[str | None]:
    for component in definition.get("components") or ():
        if isinstance(component, Mapping) and str(component.get("type", "")).upper() == "BUTTONS":
            buttons = component.get("buttons") or ()
            return [str(b.get("type", "")).upper() if isinstance(b, Mapping) else None for b in buttons]
    return []


# -- resolving --------------------------------------------------------------------------------------


class CompiledMapping:
    """A checked mapping turned into getters, so each recipient costs a handful of dict lookups."""

    __slots__ = ("_header", "_body", "_buttons")

    def __init__(self, mapping: Mapping[str, Any]):
        header = mapping.get("header")
        self._header: Callable[[Mapping], Any] | None = None
        if isinstance(header, list):
            text = _getter("header.1", header[0])
            self._header = lambda contact: [text(contact)]
        elif isinstance(header, Mapping):
            self._header = _media_getter(header)
        self._body = [_getter(f"body.{n}", entry) for n, entry in enumerate(mapping.get("body") or (), start=1)]
        self._buttons = [
            (str(key), _getter(f"buttons.{key}.1", entries[0]))
            for key, entries in (mapping.get("buttons") or {}).items()
            if entries
        ]

    def resolve(self, contact: Mapping[str, Any]) -> dict[str, Any]:
        """The `variables` of `render_components()` for one recipient; raises `MissingVariable`."""
        variables: dict[str, Any] = {}
        if self._header is not None:
            variables["header"] = self._header(contact)
        if self._body:
            variables["body"] = [get(contact) for get in self._body]
        if self._buttons:
            variables["buttons"] = {key: [get(contact)] for key, get in self._buttons}
        return variables


def required_sources(mapping: Mapping[str, Any]) -> set[str]:
    """The contact sources the mapping reads without a fallback: a recipient for whom one is empty is skipped
    (`missing_variable`), so the pre-flight counts them."""
    header = mapping.get("header")
    entries = [*(header if isinstance(header, list) else [header] if isinstance(header, Mapping) else []),
               *(mapping.get("body") or ()),
               *(entry for entries in (mapping.get("buttons") or {}).values() for entry in (entries or ())[:1])]
    return {entry["source"] for entry in entries
            if isinstance(entry, Mapping) and entry.get("source", "literal") != "literal"
            and not _filled(entry.get("fallback"))}


def compile_mapping(mapping: Mapping[str, Any]) -> CompiledMapping:
    """Compile once per campaign (after `check_mapping()` found nothing), then `.resolve(contact)` each."""
    return CompiledMapping(mapping)


def resolve(mapping: Mapping[str, Any] | CompiledMapping, contact: Mapping[str, Any]) -> dict[str, Any]:
    """One recipient's variables. `contact` holds name, phone_e164, email and attributes (a dict).

    A source empty for this recipient takes its fallback; without one, raises `MissingVariable`.
    For many recipients, pass a `compile_mapping()` result instead of the raw mapping.
    """
    compiled = mapping if isinstance(mapping, CompiledMapping) else CompiledMapping(mapping)
    return compiled.resolve(contact)


def _reader(source: str) -> Getter:
    if source == "contact.name":
        return lambda contact: contact.get("name")
    if source == "contact.first_name":
        return _first_name
    if source == "contact.phone":
        return lambda contact: contact.get("phone_e164")
    if source == "contact.email":
        return lambda contact: contact.get("email")
    key = source[len(ATTRIBUTE_PREFIX):]
    return lambda contact: (contact.get("attributes") or {}).get(key)


def _first_name(contact: Mapping[str, Any]) -> str | None:
    name = contact.get("name")
    words = name.split(None, 1) if isinstance(name, str) else None
    return words[0] if words else None


def _getter(field: str, entry: Mapping[str, Any]) -> Getter:
    """contact -> the entry's text for that recipient (fallback if empty; else MissingVariable)."""
    source = entry["source"]
    if source == "literal":
        value = str(entry["value"])
        return lambda contact: value
    read = _reader(source)
    fallback = str(entry["fallback"]) if _filled(entry.get("fallback")) else None

    def get(contact: Mapping[str, Any]) -> str:
        value = read(contact)
        text = _clean(value) if value is not None else ""
        if text:
            return text
        if fallback is None:
            raise MissingVariable(field, source)
        return fallback

    return get


def _media_getter(entry: Mapping[str, Any]) -> Callable[[Mapping], Any]:
    source, value, filename = entry["source"], entry.get("value"), entry.get("filename")
    if source == "literal" and isinstance(value, Mapping):
        constant = {key: item for key, item in value.items() if item is not None}
        return lambda contact: dict(constant)
    text = _getter("header", entry)

    def get(contact: Mapping[str, Any]) -> dict[str, Any]:
        found = text(contact)
        media = {"link": found} if found.startswith(("https://", "http://")) else {"id": found}
        if filename:
            media["filename"] = filename
        return media

    return get


def _clean(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else str(value).strip()
    if "\n" in text or "\r" in text or "\t" in text or "     " in text:
        text = " ".join(text.split())  # a recipient's own data with line breaks would make Meta refuse the send
    return text


def _filled(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
