"""X-Hub-Signature-256 over the raw bytes, any of several app secrets."""

import hashlib
import hmac
import json

import pytest

from shared.whatsapp.signatures import sign, verify_signature

BODY = b'{"object":"whatsapp_business_account","entry":[]}'
# HMAC-SHA256(key="app-secret-1", BODY), computed independently with `openssl dgst -sha256 -hmac`.
KNOWN_SIGNATURE = "sha256=0ca28c0f1996234eb6829e59ad3c11a18161f6eb043943d601e420c312432cdf"


def test_sign_matches_an_independently_computed_hmac():
    assert sign(BODY, "app-secret-1") == KNOWN_SIGNATURE
    assert sign(BODY, b"app-secret-1") == KNOWN_SIGNATURE


def test_a_good_signature_verifies():
    assert verify_signature(BODY, KNOWN_SIGNATURE, ["app-secret-1"]) is True


def test_a_tampered_body_or_wrong_secret_is_rejected():
    assert verify_signature(BODY.replace(b"[]", b"[ ]"), KNOWN_SIGNATURE, ["app-secret-1"]) is False
    assert verify_signature(BODY, KNOWN_SIGNATURE, ["app-secret-2"]) is False
    assert verify_signature(BODY, KNOWN_SIGNATURE[:-1] + "0", ["app-secret-1"]) is False


@pytest.mark.parametrize("header", [None, "", "sha256=", "   "])
def test_a_missing_or_empty_header_is_rejected(header):
    assert verify_signature(BODY, header, ["app-secret-1"]) is False


@pytest.mark.parametrize(
    "header",
    [
        KNOWN_SIGNATURE.removeprefix("sha256="),  # bare hex
        "sha1=" + KNOWN_SIGNATURE.removeprefix("sha256="),
        "sha512=" + KNOWN_SIGNATURE.removeprefix("sha256="),
        "sha256 " + KNOWN_SIGNATURE.removeprefix("sha256="),
        "sha256=é" + KNOWN_SIGNATURE.removeprefix("sha256=")[1:],  # non-ASCII must not raise
    ],
)
def test_a_wrong_prefix_or_garbled_header_is_rejected(header):
    assert verify_signature(BODY, header, ["app-secret-1"]) is False


def test_header_case_and_surrounding_whitespace_do_not_matter():
    assert verify_signature(BODY, "  SHA256=" + KNOWN_SIGNATURE[7:].upper() + "\n", ["app-secret-1"]) is True


def test_any_of_several_secrets_is_accepted_during_rotation():
    secrets = ["new-secret", "app-secret-1"]
    assert verify_signature(BODY, KNOWN_SIGNATURE, secrets) is True
    assert verify_signature(BODY, sign(BODY, "new-secret"), secrets) is True
    assert verify_signature(BODY, sign(BODY, "retired-secret"), secrets) is False
    assert verify_signature(BODY, KNOWN_SIGNATURE, iter(secrets)) is True  # any iterable


def test_no_secrets_or_an_empty_secret_never_verifies():
    forged_with_empty_key = "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest()  # anyone can compute it
    assert verify_signature(BODY, KNOWN_SIGNATURE, []) is False
    assert verify_signature(BODY, forged_with_empty_key, [""]) is False
    assert verify_signature(BODY, forged_with_empty_key, ["", "app-secret-1"]) is False


def test_a_re_serialised_body_no_longer_matches():
    raw = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[],"n":"Jos\\u00e9"}]}'
    header = sign(raw, "app-secret-1")
    reencoded = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()
    assert verify_signature(raw, header, ["app-secret-1"]) is True
    assert verify_signature(reencoded, header, ["app-secret-1"]) is False


def test_only_raw_bytes_are_accepted():
    with pytest.raises(TypeError):
        verify_signature(BODY.decode(), KNOWN_SIGNATURE, ["app-secret-1"])
    with pytest.raises(TypeError):
        sign(BODY.decode(), "app-secret-1")
    with pytest.raises(ValueError):
        sign(BODY, "")
