"""Line numbers of the keys in a JSON document, so that findings can quote `submission.json:LINE`.

`json.loads` keeps no positions; this scanner walks the (already validated) text once and records, for
every object key, the 1-based line where the key is written. Paths are tuples of keys and list indexes.
"""

from __future__ import annotations

import json
import re

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')

JsonPath = tuple[str | int, ...]


def key_lines(text: str) -> dict[JsonPath, int]:
    """Map each key path to the line of its key. The text must be valid JSON."""
    lines: dict[JsonPath, int] = {}
    stack: list[list] = []  # [kind, current key or index, expecting_key]
    line = 1
    position = 0
    pending_key: str | None = None
    for match in _TOKEN.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        token = match.group()
        if token in "{[":
            if stack and stack[-1][0] == "list":
                stack[-1][1] += 1
            stack.append(["dict", None, True] if token == "{" else ["list", -1, False])
        elif token in "}]":
            stack.pop()
        elif token == ",":
            if stack and stack[-1][0] == "dict":
                stack[-1][2] = True
        elif token == ":":
            if stack and stack[-1][0] == "dict" and pending_key is not None:
                stack[-1][1] = pending_key
                stack[-1][2] = False
                lines[_path(stack)] = line
                pending_key = None
        elif stack and stack[-1][0] == "dict" and stack[-1][2] and token.startswith('"'):
            pending_key = json.loads(token)
        elif stack and stack[-1][0] == "list":
            stack[-1][1] += 1
    return lines


def _path(stack: list[list]) -> JsonPath:
    return tuple(frame[1] for frame in stack)
