import pytest

from shared.phones import InvalidPhoneError, identity_key_for_wa_id, normalize_phone


@pytest.mark.parametrize(
    "raw,country",
    [
        ("+55 11 98765-4321", None),
        ("5511987654321", None),
        ("551187654321", None),  # WhatsApp's old 8-digit form of the same mobile
        ("(11) 98765-4321", "BR"),
        ("11 8765-4321", "BR"),
        ("0055 11 98765 4321", None),
    ],
)
def test_every_form_of_a_brazilian_mobile_is_one_person(raw, country):
    phone = normalize_phone(raw, default_country=country)
    assert phone.e164 == "+5511987654321"
    assert phone.identity_key == "551187654321"


def test_a_brazilian_landline_keeps_its_digits():
    phone = normalize_phone("+55 11 3456-7890")
    assert (phone.e164, phone.identity_key) == ("+551134567890", "551134567890")


def test_other_countries_are_plain_e164():
    assert normalize_phone("020 7946 0958", default_country="GB").e164 == "+442079460958"
    assert normalize_phone("+1 (650) 555-1234").identity_key == "16505551234"


def test_international_digits_still_read_right_with_a_default_country():
    assert normalize_phone("551187654321", default_country="US").e164 == "+5511987654321"
    assert normalize_phone("5511987654321", default_country="BR").e164 == "+5511987654321"


def test_a_wa_id_in_either_form_has_the_same_identity():
    assert identity_key_for_wa_id("551187654321") == identity_key_for_wa_id("5511987654321")


@pytest.mark.parametrize("raw,reason", [("", "empty"), ("hello", "invalid_number"), ("+1 23", "invalid_number")])
def test_invalid_numbers_say_why(raw, reason):
    with pytest.raises(InvalidPhoneError) as error:
        normalize_phone(raw)
    assert error.value.details["reason"] in (reason, "unparseable")
