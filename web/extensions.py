"""The flask-smorest Api, shaped so every error comes out in the one JSON error shape; and the app's JSON,
strict about what JSON is."""

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from web.errors import error_response
from web.schemas.common import ErrorSchema


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        return error_response(error)


api = Api()


def _not_json(constant: str) -> Any:
    raise json.JSONDecodeError(f"{constant} is not a JSON number", constant, 0)


class StrictJSONProvider(DefaultJSONProvider):
    """Bodies parsed as JSON is written: Python's parser also takes NaN and Infinity, which PostgreSQL's jsonb
    refuses (a 500 once stored); here they make the body malformed, a 400 like any other."""

    sort_keys = False  # keep the order the views give

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return json.loads(s, parse_constant=_not_json, **kwargs)
