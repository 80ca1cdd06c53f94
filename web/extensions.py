"""The flask-smorest Api, shaped so every error comes out in the one JSON error shape."""

from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from web.errors import error_response
from web.schemas.common import ErrorSchema


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        return error_response(error)


api = Api()
