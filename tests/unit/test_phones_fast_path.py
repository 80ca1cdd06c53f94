"""The import's fast path for "+<digits>" phones reads every number exactly as phonenumbers.parse does."""

import random

import phonenumbers
import pytest

from shared import phones
from shared.phones import normalize_phone


def _numbers(rng: random.Random, count: int):
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(count):
        code = str(rng.choice(codes))
        yield code + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 14)))
    for example_region in phonenumbers.SUPPORTED_REGIONS:  # real valid numbers of every region
        example = phonenumbers.example_number(example_region)
        if example is not None:
            yield f"{example.country_code}{example.national_number}"


def test_fast_path_agrees_with_phonenumbers_parse():
    rng = random.Random(11)
    fast = 0
    for digits in _numbers(rng, 20000):
        ours = phones._parse_international_digits(digits)
        if ours is phones._UNSURE:
            continue
        fast += 1
        theirs = phonenumbers.parse("+" + digits, None)
        assert (ours.country_code, ours.national_number) == (theirs.country_code, theirs.national_number), digits
        assert phonenumbers.is_valid_number(ours) == phonenumbers.is_valid_number(theirs), digits
        assert phonenumbers.format_number(ours, 0) == phonenumbers.format_number(theirs, 0), digits
    assert fast > 15000  # the fast path is taken for most numbers, not skipped


@pytest.mark.parametrize("cell", ["+5511987654321", "+551187654321", "5511987654321", "+55 11 98765-4321"])
def test_both_brazilian_mobile_forms_are_one_identity(cell):
    phone = normalize_phone(cell)
    assert (phone.e164, phone.identity_key) == ("+5511987654321", "551187654321")


def test_short_or_unknown_numbers_stay_invalid():
    for cell in ("+12345", "+0123456789", "+999123456789"):
        with pytest.raises(phones.InvalidPhoneError):
            normalize_phone(cell)
