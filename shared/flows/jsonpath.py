"""A tiny JSON path reader for api_call mappings: `$`, `$.order.id`, `$.items[0].name`, `$["a b"]`."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\[["']([^"']*)["']\]""")


def steps(path: str) -> list[str | int]:
    """The keys and indexes of `path`; raises ValueError when it is not of the form above."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError("a JSON path starts with $, e.g. $.order.id or $.items[0].name")
    parsed, position = [], 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"cannot read the JSON path {path!r} from character {position + 1}")
        name, index, quoted = match.groups()
        parsed.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    return parsed


def read(document: Any, path: str) -> Any:
    """The value at `path`, None when the document has nothing there."""
    value = document
    for step in steps(path):
        if isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value
