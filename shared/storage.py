"""File storage: import uploads, error reports, exports (and media later), behind one small interface.

`LocalStorage` keeps files under a directory (the data directory by default). Another backend
(S3, GCS) implements the same four methods. Downloads go through expiring signed links, so a
link can be handed to a browser without a bearer token.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.errors import NotFoundError
from shared.settings import get_settings


class FileNotFoundInStorageError(NotFoundError):
    code = "file_not_found"


class LinkExpiredError(NotFoundError):
    code = "link_expired"


class Storage(Protocol):
    def save(self, key: str, source: BinaryIO) -> int: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise FileNotFoundInStorageError(f"no file {key!r}")
        return path

    def save(self, key: str, source: BinaryIO) -> int:
        """Write atomically (temp file, then rename): a reader never sees half a file."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as target:
            shutil.copyfileobj(source, target, length=1 << 20)
            size = target.tell()
        os.replace(target.name, path)
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise FileNotFoundInStorageError(f"no file {key!r}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def get_storage() -> Storage:
    settings = get_settings()
    return LocalStorage(settings.storage_dir or settings.data_dir / "files")


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="pytake.files")


def signed_download_token(key: str, filename: str) -> str:
    return _signer().dumps({"key": key, "filename": filename})


def resolve_download_token(token: str, *, max_age_seconds: int) -> tuple[str, str]:
    try:
        payload = _signer().loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkExpiredError("This download link has expired; export again") from exc
    except BadSignature as exc:
        raise FileNotFoundInStorageError("No such download") from exc
    return payload["key"], payload["filename"]
