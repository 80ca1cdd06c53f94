"""The Graph API client: one call per method, no retries, every failure a `GraphError`.

Retries belong to the task layer, which reads `GraphAPIError.classification` and, for transport
errors, `ambiguous` (a send that may have left must be marked `unknown`, never resent blindly).
All clients in a process share one keep-alive `requests.Session`; it is dropped in a forked
child automatically, and `reset_session()` does the same by hand.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError  # requests' own transport

from shared.whatsapp import outbound
from shared.whatsapp.errors import (
    GraphAPIError,
    GraphConnectionError,
    GraphMalformedResponseError,
    GraphTimeoutError,
    MediaUrlExpiredError,
)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
DEFAULT_CONNECT_TIMEOUT = 3.05
DEFAULT_READ_TIMEOUT = 15.0

DEFAULT_TEMPLATE_FIELDS = ("id", "name", "language", "status", "category", "components", "quality_score")
DEFAULT_PHONE_NUMBER_FIELDS = (
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "whatsapp_business_manager_messaging_limit",
    "throughput",
    "code_verification_status",
    "name_status",
    "status",
    "platform_type",
    "account_mode",
    "is_official_business_account",
    "health_status",
)

POOL_MAXSIZE = 32
_session: requests.Session | None = None
_session_lock = threading.Lock()


def get_session() -> requests.Session:
    """The process's keep-alive session, created on first use."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                _session = requests.Session()
                # One keep-alive connection per sending thread (urllib3 keeps 10 by default and opens
                # and drops a fresh connection for every request past that).
                adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_MAXSIZE)
                _session.mount("https://", adapter)
                _session.mount("http://", adapter)
                _skip_environment_lookups(_session)
    return _session


def _skip_environment_lookups(session: requests.Session) -> None:
    """Read the environment once, not on every request.

    With `trust_env` requests looks up proxies, no_proxy, ~/.netrc and the CA bundle variables for
    each call: a quarter of its client CPU per send (bench/README.md). Proxies need that per-URL
    lookup (no_proxy), so a process with proxy settings keeps it; otherwise the CA bundle the
    environment names is pinned on the session and the lookups are skipped.
    """
    if urllib.request.getproxies():
        return
    session.trust_env = False
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def reset_session() -> None:
    """Forget the process's session; the next call opens fresh connections.

    Not closed on purpose: after a fork its sockets are shared with the parent, which still uses them.
    """
    global _session, _session_lock
    _session = None
    _session_lock = threading.Lock()


os.register_at_fork(after_in_child=reset_session)


class _BearerAuth(requests.auth.AuthBase):
    """Sets the token per request; as an auth object it also keeps ~/.netrc from replacing it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


@dataclass(frozen=True)
class SendResult:
    wamid: str
    message_status: str | None  # accepted, held_for_quality_assessment, paused...; often absent
    wa_id: str | None  # Meta's form of the recipient; may differ from what we sent


@dataclass(frozen=True)
class MediaInfo:
    id: str
    url: str  # valid for 5 minutes
    mime_type: str | None
    sha256: str | None
    file_size: int | None


@dataclass(frozen=True)
class TemplatePage:
    templates: list[dict[str, Any]]
    next_after: str | None  # pass back as `after` for the next page; None on the last page


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an empty id cannot be part of a Graph API path")
    return quote(str(value), safe="")


class GraphClient:
    def __init__(
        self,
        base_url: str,
        api_version: str,
        access_token: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not access_token:
            raise ValueError("an access token is required")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        version = api_version.strip().strip("/")
        self.base_url = base_url.rstrip("/")
        self.api_version = version if version.startswith("v") else f"v{version}"
        self.timeout = (connect_timeout, read_timeout)
        self._auth = _BearerAuth(access_token)
        self._session = session

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url!r}, {self.api_version!r})"

    # -- messages ---------------------------------------------------------------------------

    def send_text(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        *,
        preview_url: bool = False,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.text_content(body, preview_url=preview_url)
        return self._send(phone_number_id, to, "text", content, context_message_id, biz_opaque_callback_data)

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.template_content(name, language, components)
        return self._send(phone_number_id, to, "template", content, context_message_id, biz_opaque_callback_data)

    def send_media(
        self,
        phone_number_id: str,
        to: str,
        media_type: str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.media_content(media_type, media_id=media_id, link=link, caption=caption, filename=filename)
        return self._send(phone_number_id, to, media_type, content, context_message_id, biz_opaque_callback_data)

    def send_interactive_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: Sequence[tuple[str, str]],
        *,
        header: str | Mapping[str, Any] | None = None,
        footer: str | None = None,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.reply_buttons_content(body, buttons, header=header, footer=footer)
        return self._send(phone_number_id, to, "interactive", content, context_message_id, biz_opaque_callback_data)

    def send_interactive_list(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        button: str,
        sections: Sequence[Mapping[str, Any]],
        *,
        header: str | None = None,
        footer: str | None = None,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.list_content(body, button, sections, header=header, footer=footer)
        return self._send(phone_number_id, to, "interactive", content, context_message_id, biz_opaque_callback_data)

    def send_reaction(
        self,
        phone_number_id: str,
        to: str,
        message_id: str,
        emoji: str,
        *,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.reaction_content(message_id, emoji)
        return self._send(phone_number_id, to, "reaction", content, context_message_id, biz_opaque_callback_data)

    def send_location(
        self,
        phone_number_id: str,
        to: str,
        latitude: float,
        longitude: float,
        *,
        name: str | None = None,
        address: str | None = None,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.location_content(latitude, longitude, name=name, address=address)
        return self._send(phone_number_id, to, "location", content, context_message_id, biz_opaque_callback_data)

    def send_contacts(
        self,
        phone_number_id: str,
        to: str,
        contacts: Sequence[Mapping[str, Any]],
        *,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        content = outbound.contacts_content(contacts)
        return self._send(phone_number_id, to, "contacts", content, context_message_id, biz_opaque_callback_data)

    def send_message(
        self,
        phone_number_id: str,
        to: str,
        message_type: str,
        content: Any,
        *,
        context_message_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        """Send a body object already built (and stored) for `message_type`, as the send pipeline does."""
        return self._send(phone_number_id, to, message_type, content, context_message_id, biz_opaque_callback_data)

    def mark_as_read(self, phone_number_id: str, message_id: str, *, typing_indicator: bool = False) -> bool:
        body = outbound.read_receipt(message_id, typing_indicator=typing_indicator)
        data = self._json("POST", f"{_segment(phone_number_id)}/messages", json=body)
        return data.get("success") is True

    def _send(
        self,
        phone_number_id: str,
        to: str,
        message_type: str,
        content: Any,
        context_message_id: str | None,
        biz_opaque_callback_data: str | None,
    ) -> SendResult:
        body = outbound.message_envelope(
            to,
            message_type,
            content,
            context_message_id=context_message_id,
            biz_opaque_callback_data=biz_opaque_callback_data,
        )
        path = f"{_segment(phone_number_id)}/messages"
        data = self._json("POST", path, json=body)
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        if not isinstance(first.get("id"), str) or not first["id"]:
            raise GraphMalformedResponseError(
                "send accepted without a message id", method="POST", path=path, http_status=200
            )
        contacts = data.get("contacts")
        contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
        return SendResult(wamid=first["id"], message_status=first.get("message_status"), wa_id=contact.get("wa_id"))

    # -- media ------------------------------------------------------------------------------

    def upload_media(self, phone_number_id: str, content: bytes, mime_type: str, filename: str) -> str:
        """Upload a file; the returned media id is valid for 30 days."""
        path = f"{_segment(phone_number_id)}/media"
        data = self._json(
            "POST",
            path,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        media_id = data.get("id")
        if not isinstance(media_id, str) or not media_id:
            message = "upload answered without a media id"
            raise GraphMalformedResponseError(message, method="POST", path=path, http_status=200)
        return media_id

    def get_media_url(self, media_id: str, *, phone_number_id: str | None = None) -> MediaInfo:
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        path = _segment(media_id)
        data = self._json("GET", path, params=params)
        if not isinstance(data.get("url"), str):
            message = "media lookup answered without a url"
            raise GraphMalformedResponseError(message, method="GET", path=path, http_status=200)
        size = data.get("file_size")
        if isinstance(size, str) and size.isascii() and size.isdigit():
            size = int(size)
        return MediaInfo(
            id=str(data.get("id") or media_id),
            url=data["url"],
            mime_type=data.get("mime_type"),
            sha256=data.get("sha256"),
            file_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        )

    def download_media(self, url: str) -> bytes:
        """The file behind a URL from `get_media_url`; `MediaUrlExpiredError` means fetch a fresh URL."""
        response = self._request("GET", url, absolute=True)
        if response.status_code == 404:
            raise MediaUrlExpiredError.from_body(404, _decoded(response))
        if not response.ok:
            raise _api_error(response)
        return response.content

    # -- templates and numbers --------------------------------------------------------------

    def list_templates(
        self,
        waba_id: str,
        *,
        fields: Sequence[str] = DEFAULT_TEMPLATE_FIELDS,
        limit: int = 100,
        name: str | None = None,
        status: str | None = None,
        after: str | None = None,
    ) -> TemplatePage:
        params: dict[str, Any] = {"fields": ",".join(fields), "limit": limit}
        if name:
            params["name"] = name
        if status:
            params["status"] = status
        if after:
            params["after"] = after
        data = self._json("GET", f"{_segment(waba_id)}/message_templates", params=params)
        paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
        cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
        # The last page still carries cursors; only `next` says there is more.
        next_after = cursors.get("after") if paging.get("next") else None
        templates = data.get("data") if isinstance(data.get("data"), list) else []
        return TemplatePage(templates=templates, next_after=next_after)

    def create_template(self, waba_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a template for review; answers `{"id", "status", "category"}`."""
        return self._json("POST", f"{_segment(waba_id)}/message_templates", json=dict(payload))

    def delete_template(self, waba_id: str, name: str, *, hsm_id: str | None = None) -> bool:
        """Delete every language of `name`, or only the one with template id `hsm_id`."""
        params = {"name": name}
        if hsm_id:
            params["hsm_id"] = hsm_id
        data = self._json("DELETE", f"{_segment(waba_id)}/message_templates", params=params)
        return data.get("success") is True

    def get_phone_number(
        self, phone_number_id: str, fields: Sequence[str] = DEFAULT_PHONE_NUMBER_FIELDS
    ) -> dict[str, Any]:
        return self._json("GET", _segment(phone_number_id), params={"fields": ",".join(fields)})

    # -- transport --------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        if not response.ok:
            raise _api_error(response)
        data = _decoded(response)
        if not isinstance(data, dict):
            message = f"HTTP {response.status_code} answer is not a JSON object"
            raise GraphMalformedResponseError(message, method=method, path=path, http_status=response.status_code)
        return data

    def _request(self, method: str, path: str, *, absolute: bool = False, **kwargs: Any) -> requests.Response:
        url = path if absolute else f"{self.base_url}/{self.api_version}/{path}"
        shown = path if not absolute else url.split("?", 1)[0]
        session = self._session or get_session()
        try:
            return session.request(method, url, auth=self._auth, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            message = f"connect timeout on {method} {shown}"
            raise GraphTimeoutError(message, method=method, path=shown, phase="connect") from exc
        except requests.exceptions.ReadTimeout as exc:
            message = f"read timeout on {method} {shown}"
            raise GraphTimeoutError(message, method=method, path=shown, phase="read") from exc
        except _CONNECTION_FAILURES as exc:
            raise GraphConnectionError(
                f"connection failed on {method} {shown}: {type(exc).__name__}",
                method=method,
                path=shown,
                request_sent=not _never_connected(exc),
            ) from exc


_CONNECTION_FAILURES = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _never_connected(exc: Exception) -> bool:
    # Refused or unresolvable: the only connection errors that prove nothing was sent.
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


def _decoded(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _api_error(response: requests.Response) -> GraphAPIError:
    return GraphAPIError.from_body(response.status_code, _decoded(response), retry_after=_retry_after(response))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date, which Graph does not send
    return seconds if seconds >= 0 else None
