"""Reading a record README as a maintainer does: which sections are current, and what the README declares.

A README often keeps history: an "Original submission" or "Deprecated" section with the command of a
withdrawn version, commented-out commands, HTML comments. Only the current text documents the run; the
headings below mark a section (down to the next heading of the same or a higher level) as not current.
"""

from __future__ import annotations

import re

# Headings that retire their section. "Original runs" is not among them: records call the runs they submit
# that (the 2026-04-29 compliance reproduction lists its "Original Runs" as the claimed ones).
_RETIRED = re.compile(
    r"(?i)\b(retracted|withdrawn|deprecated|superseded|obsolete|outdated|no longer (?:valid|used|current)"
    r"|(?:original|old|older|previous|prior|earlier|first|initial)\s+(?:submission|version|command|run command|"
    r"approach|attempt|entry|record|config(?:uration)?)s?|^old\b|\bold:|\(old\)|\bv\d+\s*\((?:old|retracted)\))"
)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def retired_heading(title: str) -> bool:
    return bool(_RETIRED.search(title.strip()))


def current_lines(text: str) -> list[bool]:
    """Per line (0-based): True when the line is current text -- not under a retired heading, not inside an
    HTML comment. Fenced code keeps the state of the section it is in (headings inside fences are code)."""
    out: list[bool] = []
    retired_level: int | None = None
    in_fence = False
    in_comment = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            heading = _HEADING.match(line)
            if heading:
                level = len(heading.group(1))
                if retired_level is not None and level <= retired_level:
                    retired_level = None
                if retired_level is None and retired_heading(heading.group(2)):
                    retired_level = level
            if "<!--" in line and "-->" not in line.split("<!--", 1)[1]:
                in_comment = True
                out.append(False)
                continue
            if in_comment:
                if "-->" in line:
                    in_comment = False
                out.append(False)
                continue
        out.append(retired_level is None and not in_comment)
    return out
