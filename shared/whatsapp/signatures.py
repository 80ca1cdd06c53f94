"""`X-Hub-Signature-256`: HMAC-SHA256 of the raw request bytes, keyed by the app secret (reference §6).

Verify over the exact bytes received, before any JSON parsing: Meta escapes non-ASCII as `\\uXXXX`,
so re-serialising the body changes the bytes and breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="


def _key(app_secret: str | bytes) -> bytes:
    return app_secret.encode() if isinstance(app_secret, str) else app_secret


def sign(body: bytes, app_secret: str | bytes) -> str:
    """The header value Meta would send for `body`: `sha256=<hex>`."""
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("sign the raw request bytes, not a decoded body")
    if not app_secret:
        raise ValueError("an app secret is required")
    return SIGNATURE_PREFIX + hmac.new(_key(app_secret), bytes(body), hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, app_secrets: Iterable[str | bytes]) -> bool:
    """True when `header` is a valid signature of `body` under any of `app_secrets` (rotation, several apps).

    Empty secrets are ignored: an empty HMAC key is public, so it would accept forged bodies.
    """
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("verify the raw request bytes, not a decoded body")
    if not header:
        return False
    header = header.strip()
    if header[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX:
        return False
    try:
        received = header[len(SIGNATURE_PREFIX) :].lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    matched = False
    # No early exit: every secret costs the same, so timing reveals nothing about which one matched.
    for secret in app_secrets:
        if not secret:
            continue
        expected = hmac.new(_key(secret), bytes(body), hashlib.sha256).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, received)
    return matched
