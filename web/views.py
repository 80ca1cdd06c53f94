"""What a view declared about itself (permission, accepted uploads), looked up before it runs."""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask


def view_handler(app: Flask, endpoint: str, method: str) -> Callable | None:
    view = app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method == "HEAD":
        handler = getattr(view_class, "get", None)
    return handler


def view_attribute(app: Flask, endpoint: str | None, method: str, name: str, default: Any = None) -> Any:
    if endpoint is None:
        return default
    return getattr(view_handler(app, endpoint, method), name, default)


def accepts_upload(max_bytes_setting: str = "max_upload_bytes") -> Callable:
    """Mark a view that takes multipart/form-data, with a larger body limit than JSON endpoints."""

    def mark(view: Callable) -> Callable:
        view.accepts_upload = max_bytes_setting
        return view

    return mark
