"""The languages PyTake speaks to customers in on an organization's behalf, and what it says in each.

An organization has one `language` (default "en"); the texts PyTake sends on its own (the keyword
confirmations) are chosen by it. An organization's own text (`settings.opt_out_reply`,
`settings.opt_in_reply`) replaces the language's default. Each confirmation names a keyword the
default keyword lists recognize in every language (shared/services/inbound.py), so the customer
can always undo it.
"""

from __future__ import annotations

from typing import Any, Literal

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = ("en", "es", "pt-BR")

ConfirmationKind = Literal["opt_out", "opt_in"]

KEYWORD_CONFIRMATIONS: dict[str, dict[str, str]] = {
    "en": {
        "opt_out": "You will no longer receive messages from us. Reply START to receive them again.",
        "opt_in": "You will receive our messages again. Reply STOP to stop them at any time.",
    },
    "pt-BR": {
        "opt_out": "Você não receberá mais mensagens nossas. Responda VOLTAR para recebê-las novamente.",
        "opt_in": "Você voltará a receber nossas mensagens. Responda PARAR para deixar de recebê-las a qualquer momento.",
    },
    "es": {
        "opt_out": "Ya no recibirás mensajes nuestros. Responde ALTA para volver a recibirlos.",
        "opt_in": "Volverás a recibir nuestros mensajes. Responde BAJA para dejar de recibirlos en cualquier momento.",
    },
}

# The settings keys an organization overrides a confirmation with.
CONFIRMATION_SETTINGS = {"opt_out": "opt_out_reply", "opt_in": "opt_in_reply"}


def keyword_confirmation(kind: ConfirmationKind, *, language: str | None, settings: dict[str, Any] | None) -> str:
    """The organization's own text when it set one, else its language's default (English when unknown)."""
    override = (settings or {}).get(CONFIRMATION_SETTINGS[kind])
    if isinstance(override, str) and override.strip():
        return override
    texts = KEYWORD_CONFIRMATIONS.get(language or DEFAULT_LANGUAGE) or KEYWORD_CONFIRMATIONS[DEFAULT_LANGUAGE]
    return texts[kind]
