"""Meta's error shapes: the synchronous Graph API envelope and the asynchronous `errors[]` item.

Only codes the sandbox produces are catalogued. Titles follow Meta's error-code table; the HTTP status
is the one the reference lists as typical (clients must branch on `code`, never on the status).
"""

from __future__ import annotations

import secrets

ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# code -> (title, typical HTTP status)
CATALOGUE: dict[int, tuple[str, int]] = {
    100: ("Invalid parameter", 400),
    190: ("Invalid OAuth access token", 401),
    130429: ("Rate limit hit", 429),
    131000: ("Something went wrong", 500),
    131021: ("Recipient cannot be sender", 400),
    131026: ("Message undeliverable", 400),
    131047: ("Re-engagement message", 400),
    131048: ("Spam rate limit hit", 429),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.", 400),
    131050: ("Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on "
             "WhatsApp from your business.", 400),
    131051: ("Unsupported message type", 400),
    131053: ("Media upload error", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", 400),
    132000: ("Number of parameters does not match the expected number of params", 400),
    132001: ("Template name does not exist in the translation", 404),
    132012: ("Parameter format does not match format in the created template", 400),
    132015: ("Template is Paused", 400),
    132016: ("Template is Disabled", 400),
}

DEFAULT_DETAILS: dict[int, str] = {
    130429: "Cloud API message throughput has been reached.",
    131000: "Something went wrong. Please try again later.",
    131026: "Message undeliverable: the recipient is not a WhatsApp user or cannot receive this message.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied "
    "to this number.",
    131048: "Message failed to send because there are restrictions on how many messages can be sent from "
    "this phone number.",
    131049: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    131050: "The recipient has stopped marketing messages from this business.",
    131056: "Message failed to send because there were too many messages sent from this phone number to the "
    "same phone number in a short period of time.",
}

# Meta still sends this deprecated subcode with throughput errors.
SUBCODES = {130429: 2494055}


def fbtrace_id() -> str:
    return secrets.token_urlsafe(18)[:23]


class GraphError(Exception):
    """A synchronous Graph API error; the Graph blueprint turns it into Meta's envelope."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        subcode: int | None = None,
        message: str | None = None,
        error_type: str = "OAuthException",
        http_status: int | None = None,
    ):
        title, status = CATALOGUE[code]
        self.code = code
        self.title = title
        self.details = details if details is not None else DEFAULT_DETAILS.get(code, title)
        self.subcode = subcode if subcode is not None else SUBCODES.get(code)
        self.message = message or f"(#{code}) {title}"
        self.error_type = error_type
        self.http_status = http_status or status
        super().__init__(self.message)

    def envelope(self) -> dict:
        error = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


def invalid(details: str, *, subcode: int | None = None) -> GraphError:
    """Code 100: a malformed, missing or over-length parameter."""
    return GraphError(100, details, subcode=subcode)


def unknown_object(object_id: str, method: str) -> GraphError:
    """What Graph answers for an id that does not exist (or that this token cannot see)."""
    verb = method.lower()
    return GraphError(
        100,
        f"Object with ID '{object_id}' does not exist",
        subcode=33,
        error_type="GraphMethodException",
        message=(
            f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation. Please read the Graph API documentation "
            "at https://developers.facebook.com/docs/graph-api"
        ),
    )


def async_error(code: int, details: str | None = None) -> dict:
    """The item of `statuses[].errors[]` (and `messages[].errors[]`) in webhooks."""
    title = CATALOGUE[code][0]
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or DEFAULT_DETAILS.get(code, title)},
        "href": ERROR_CODES_HREF,
    }
