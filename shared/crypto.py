"""Secrets at rest (WhatsApp access tokens, app secrets, verify tokens, AI API keys), with key rotation.

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, through MultiFernet: the first key
of ENCRYPTION_KEYS encrypts, every key decrypts. To rotate: put a new key first, run
`python -m shared.cli rotate-secrets` (re-encrypts every stored secret with it), then drop
the old key. Without ENCRYPTION_KEYS (development only; production refuses to start) a key
is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.settings import get_settings


class SecretUnreadableError(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


@functools.cache
def _fernet(keys: tuple[str, ...], fallback_secret: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"pytake-secrets:{fallback_secret}".encode()).digest())
        return MultiFernet([Fernet(derived)])
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    settings = get_settings()
    return _fernet(settings.encryption_keys, settings.secret_key)


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadableError("a stored secret cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    """The same secret, re-encrypted with the first (newest) key."""
    return _current().rotate(token.encode()).decode()
