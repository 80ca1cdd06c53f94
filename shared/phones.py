"""Phone identity: one WhatsApp user is one contact, whatever form the number arrived in.

`normalize_phone` turns what a person typed, a CSV cell or a webhook's `wa_id` into
- `e164`: the number in E.164 (`+5511987654321`),
- `wa_id`: the digits WhatsApp addresses (`5511987654321`),
- `identity_key`: what makes two numbers the same person. For Brazilian mobiles it drops
  the ninth digit, because WhatsApp still reports many of them in the old 8-digit form
  (`551187654321`) while people and CRMs write the 9-digit one (`5511987654321`).
"""

from __future__ import annotations

from dataclasses import dataclass

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberType

from shared.errors import InvalidInputError

BRAZIL = "55"
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class InvalidPhoneError(InvalidInputError):
    code = "invalid_phone"


@dataclass(frozen=True)
class Phone:
    e164: str
    wa_id: str
    identity_key: str


def _brazil_with_ninth_digit(digits: str) -> str:
    """55 + area code + 8-digit mobile (old form) → 55 + area code + 9 + 8 digits."""
    if digits.startswith(BRAZIL) and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


def identity_key(e164_digits: str) -> str:
    if e164_digits.startswith(BRAZIL) and len(e164_digits) == 13 and e164_digits[4] == "9":
        return e164_digits[:4] + e164_digits[5:]
    return e164_digits


_ASCII_DIGITS = re.compile(r"[0-9]+")
_UNSURE = object()


@lru_cache(maxsize=None)
def _national_prefix_pattern(country_code: int) -> re.Pattern | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


def _parse_international_digits(digits: str):
    """What phonenumbers.parse("+" + digits) returns, without its general machinery; _UNSURE when
    the number takes one of parse's special paths (a national prefix to strip, a leading zero, no
    known country code), which the caller then leaves to phonenumbers.parse itself.

    An import parses every row's phone: parse() is most of its cost, and nearly every cell is
    already "+<country code><national number>".
    """
    if digits[0] == "0":
        return _UNSURE
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return _UNSURE
    national = digits[length:]
    if not 2 <= len(national) <= 17 or national[0] == "0":
        return _UNSURE
    prefix = _national_prefix_pattern(country_code)
    if prefix is not None and prefix.match(national):
        return _UNSURE
    return PhoneNumber(country_code=country_code, national_number=int(national))


def _parse(candidate: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    if candidate.startswith("+") and _ASCII_DIGITS.fullmatch(candidate, 1):
        parsed = _parse_international_digits(candidate[1:])
        if parsed is not _UNSURE:
            return parsed
    try:
        return phonenumbers.parse(candidate, region)
    except NumberParseException:
        return None


def _parse_valid(candidate: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    parsed = _parse(candidate, region)
    if parsed is None:
        return None
    if phonenumbers.is_valid_number(parsed):
        return parsed
    # A Brazilian mobile written without its ninth digit is valid once the digit is added.
    fixed = _parse("+" + _brazil_with_ninth_digit(f"{parsed.country_code}{parsed.national_number}"), None)
    return fixed if fixed is not None and phonenumbers.is_valid_number(fixed) else None


def normalize_phone(raw: str, *, default_country: str | None = None) -> Phone:
    """Raises InvalidPhoneError with the reason a person can act on.

    "+…" and "00…" are international. Anything else is read as a local number of the
    organization's default country first, then as international digits (a wa_id).
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneError("The phone number is empty", details={"reason": "empty"})
    if text.startswith("+") and _ASCII_DIGITS.fullmatch(text, 1):
        digits = text[1:]  # the usual form: no characters to pick out one by one
    else:
        digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise InvalidPhoneError(f"Not a phone number: {raw!r}", details={"reason": "unparseable"})
    international = "+" + _brazil_with_ninth_digit(digits[2:] if text.startswith("00") else digits)
    if text.startswith(("+", "00")):
        parsed = _parse_valid(international, None)
    else:
        parsed = (_parse_valid(text, default_country) if default_country else None) or _parse_valid(international, None)
    if parsed is None:
        where = f" for {default_country}" if default_country and not text.startswith(("+", "00")) else ""
        raise InvalidPhoneError(f"{raw!r} is not a valid phone number{where}", details={"reason": "invalid_number"})
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, wa_id=e164[1:], identity_key=identity_key(e164[1:]))


def identity_key_for_wa_id(wa_id: str) -> str:
    """The identity of a webhook's wa_id, without parsing (it is already international digits)."""
    return identity_key(_brazil_with_ninth_digit("".join(ch for ch in wa_id if ch.isdigit())))
