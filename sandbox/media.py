"""Media: the MIME types and sizes Meta accepts, stored objects, and short-lived signed download URLs."""

from __future__ import annotations

import hashlib
import hmac

from sandbox.errors import GraphError
from sandbox.state import Media, SandboxState, new_numeric_id

KB, MB = 1024, 1024 * 1024
# media kind -> (accepted MIME types, maximum size)
SUPPORTED: dict[str, tuple[tuple[str, ...], int]] = {
    "image": (("image/jpeg", "image/png"), 5 * MB),
    "video": (("video/mp4", "video/3gpp"), 16 * MB),
    "audio": (("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"), 16 * MB),
    "document": (
        (
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        100 * MB,
    ),
    "sticker": (("image/webp",), 500 * KB),  # animated stickers may be 500 KB, static ones 100 KB
}
DEFAULT_MIME = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/ogg", "document": "application/pdf",
                "sticker": "image/webp"}
DOWNLOAD_URL_TTL = 300  # seconds, as Meta's media URLs
DOWNLOAD_PATH = "/whatsapp_business/attachments/"


def kind_of(mime_type: str) -> str | None:
    base = mime_type.split(";")[0].strip().lower()
    return next((kind for kind, (types, _) in SUPPORTED.items() if base in types), None)


def check_upload(mime_type: str, size: int) -> None:
    kind = kind_of(mime_type)
    if kind is None:
        raise GraphError(131053, f"Unsupported media type {mime_type!r}.")
    limit = SUPPORTED[kind][1]
    if size > limit:
        raise GraphError(131053, f"{kind} files may be at most {limit} bytes; this one has {size}.")
    if size == 0:
        raise GraphError(131053, "The uploaded file is empty.")


def store(state: SandboxState, *, phone_number_id: str, waba_id: str, mime_type: str, data: bytes, ttl: float,
          filename: str | None = None) -> Media:
    media = Media(
        id=new_numeric_id(state.media),
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        mime_type=mime_type,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        expires_at=state.clock.now() + ttl,
        filename=filename,
    )
    state.media[media.id] = media
    return media


def live(state: SandboxState, media_id: str) -> Media | None:
    media = state.media.get(media_id)
    if media is None or media.expires_at <= state.clock.now():
        return None
    return media


def _signature(state: SandboxState, media_id: str, expires: int) -> str:
    return hmac.new(state.url_key, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def download_url(state: SandboxState, host_url: str, media: Media) -> str:
    expires = int(state.clock.now()) + DOWNLOAD_URL_TTL
    return (f"{host_url.rstrip('/')}{DOWNLOAD_PATH}?mid={media.id}&ext={expires}"
            f"&hash={_signature(state, media.id, expires)}")


def resolve_download(state: SandboxState, media_id: str, expires: str, signature: str) -> Media | None:
    """The media a download URL points at, or None when the URL is forged, expired or the media gone."""
    if not expires.isdigit():
        return None
    if not hmac.compare_digest(_signature(state, media_id, int(expires)), signature):
        return None
    if int(expires) < state.clock.now():
        return None
    return live(state, media_id)


def describe(media: Media, url: str) -> dict:
    return {
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "file_size": len(media.data),
        "id": media.id,
    }
