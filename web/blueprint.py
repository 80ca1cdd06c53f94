"""The API's Blueprint: flask-smorest's, whose argument parser reads JSON bodies with the app's strict JSON
(web.extensions.StrictJSONProvider) and builds each argument schema once, not once per request."""

from __future__ import annotations

import typing

import flask_smorest
import marshmallow as ma
from flask import Request, current_app
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class ArgumentsParser(FlaskParser):
    """Two changes to webargs' parser:
    - bodies are parsed by the app's JSON provider (webargs' own parser takes NaN and Infinity);
    - webargs builds a new instance of an argument schema *class* on every request, and marshmallow
      deep-copies every declared field to do it: 0.2 ms of the send request's 2.7. A schema's `load`
      keeps no state between calls, so one instance per class serves every request and thread."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._instances: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap, req) -> ma.Schema:
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._instances.get(argmap)
            if schema is None:
                schema = self._instances.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        return current_app.json.loads(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()
