"""Media pipeline: files agents send, kept in the storage interface until the sends pool uploads them to Meta.

An upload is stored under `uploads/<org>/<random>.<ext>`: the extension carries the MIME type, so
the key alone says what the file is and whose it is. A media message then names it
(`{"upload": key}`); the send worker uploads the bytes to Graph and sends by the media id, as Meta
advises at high throughput. Size and type limits are Meta's (reference §2).
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import BinaryIO

from shared.errors import InvalidInputError
from shared.storage import get_storage

MB = 1024 * 1024
# Meta's accepted types and sizes per media message type.
LIMITS = {
    "image": ({"image/jpeg", "image/png"}, 5 * MB),
    "video": ({"video/mp4", "video/3gpp"}, 16 * MB),
    "audio": ({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}, 16 * MB),
    "document": (None, 100 * MB),  # any type
    "sticker": ({"image/webp"}, 500 * 1024),
}
MAX_UPLOAD_BYTES = 100 * MB


class MediaInvalidError(InvalidInputError):
    code = "invalid_media"


def _extension(mime_type: str) -> str:
    extension = mimetypes.guess_extension(mime_type, strict=False)
    if extension is None:
        raise MediaInvalidError(f"unsupported file type {mime_type!r}", details={"mime_type": mime_type})
    return extension


def save_upload(*, org_id: uuid.UUID, mime_type: str, stream: BinaryIO) -> dict:
    key = f"uploads/{org_id}/{uuid.uuid4().hex}{_extension(mime_type)}"
    size = get_storage().save(key, stream)
    if size > MAX_UPLOAD_BYTES:
        get_storage().delete(key)
        raise MediaInvalidError(f"files are limited to {MAX_UPLOAD_BYTES // MB} MB", details={"size_bytes": size})
    return {"upload": key, "mime_type": mime_type_of(key), "size_bytes": size}


def mime_type_of(key: str) -> str:
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


def check_upload(*, org_id: uuid.UUID, media_type: str, key: str) -> None:
    """The key is this organization's, exists, and fits what Meta takes for `media_type`."""
    storage = get_storage()
    if not key.startswith(f"uploads/{org_id}/") or not storage.exists(key):
        raise MediaInvalidError("no such upload here; upload the file to /media first", details={"upload": key})
    allowed, limit = LIMITS[media_type]
    mime_type = mime_type_of(key)
    if allowed is not None and mime_type not in allowed:
        raise MediaInvalidError(f"{media_type} messages take {', '.join(sorted(allowed))}, not {mime_type}",
                                details={"mime_type": mime_type, "allowed": sorted(allowed)})
    with storage.open(key) as handle:
        size = handle.seek(0, 2)
    if size > limit:
        raise MediaInvalidError(f"{media_type} files are limited to {limit // 1024} KB",
                                details={"size_bytes": size, "limit_bytes": limit})


def read_upload(key: str) -> bytes:
    with get_storage().open(key) as handle:
        return handle.read()
