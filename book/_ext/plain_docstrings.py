"""Sphinx extension: `lvmcls`'s docstrings are written for `help()` and the chapters' `show`, in plain text with
Unicode mathematics (``q(z|x)``, indented equation lines), not reStructuredText. Before autodoc parses one, this
escapes the characters reST would read as markup (``|`` as a substitution, a lone ``*`` as emphasis) outside
``literals``, and turns a run of lines indented past the text of the line just above it (a list item's text included) (an equation block) into a
literal block, so the API pages show the equations as written, aligned, and build without warnings."""

from __future__ import annotations

import re

_LITERAL = re.compile(r"(``.+?``)")


def _escape(line: str) -> str:
    parts = _LITERAL.split(line)
    for i in range(0, len(parts), 2):  # the even parts lie outside ``literals``
        text = parts[i].replace("\\", "\\\\").replace("|", "\\|")
        parts[i] = re.sub(r"(?<![*\w])\*(?![*\s])|(?<=\w)\*(?!\*)", r"\\*", text)
    return "".join(parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _text_indent(line: str) -> int:
    """Where the text of ``line`` starts: after a list marker ("- ", "1. ") for a list item."""
    marker = re.match(r"([-*+]|\d+\.)\s+", line.lstrip())
    return _indent(line) + (marker.end() if marker else 0)


def plain_to_rest(lines: list[str]) -> list[str]:
    out: list[str] = []
    in_block, block_indent = False, 0
    for line in lines:
        if in_block:
            if line.strip() and _indent(line) <= block_indent:
                in_block = False
                out.append("")
            else:
                out.append(line)
                continue
        previous = out[-1] if out else ""
        if line.strip() and previous.strip() and _indent(line) > _text_indent(previous):
            out[-1] = previous.rstrip() + "::"
            out.append("")
            out.append(line)
            in_block, block_indent = True, _indent(previous)
            continue
        out.append(_escape(line))
    return out


def _process(app, what, name, obj, options, lines):
    lines[:] = plain_to_rest(list(lines))


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
