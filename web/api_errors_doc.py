"""401, 403 and 404 in the OpenAPI document, where each happens, from what every view declares.

A view says who may call it (`web.auth.requires`); a path with parameters names something that may not
exist (or belong to another organization). flask-smorest documents only `default` and 422 by itself, so
after the blueprints are registered each operation gets the answers it can give, in the one error shape.
409 is declared by the views that can conflict (`blp.alt_response(409, ...)`): no rule finds those.
"""

from __future__ import annotations

import re

from flask import Flask

from shared.permissions import Permission
from web.auth import PUBLIC

_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
ANSWERS = {
    "401": "No token, or one that is invalid, expired or revoked (`unauthorized`, `token_invalid`, `token_expired`, "
           "`token_revoked`)",
    "403": "The caller's role may not do this here (`permission_denied`, `forbidden`)",
    "404": "Nothing by that id in the caller's organization (`..._not_found`)",
}


def document_errors(api, app: Flask) -> None:
    paths = api.spec._paths  # apispec keeps the operations here; flask-smorest wrote them at registration
    for rule in app.url_map.iter_rules():
        operations = paths.get(_PARAMETER.sub(r"{\1}", rule.rule))
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        if not operations or view_class is None:
            continue
        for method, operation in operations.items():
            view = getattr(view_class, method, None)
            requirement = getattr(view, "required_permission", None)
            if requirement is None or requirement == PUBLIC:
                continue
            answers = ["401"]
            if isinstance(requirement, Permission):
                answers.append("403")
            if "<" in rule.rule:
                answers.append("404")
            for status in answers:
                operation.setdefault("responses", {}).setdefault(
                    status, {"description": ANSWERS[status], "content": _ERROR})
