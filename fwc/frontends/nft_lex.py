"""Tokenizer for nftables ruleset text.  One regular expression does the work (fast on 10k-rule
files); every token keeps its line and column for located errors.

Words are greedy like nft's own scanner: `80-443`, `10.0.0.0/8`, `dead::beef`, `echo-request`,
`eth*`, `1.1.1.1:80` are single words; the parser splits ranges, prefixes and ports by context.
"""

from __future__ import annotations

import re
from typing import Iterator

import attrs

from fwc.errors import FwcSyntaxError
from fwc.ir import Loc

# kinds: WORD STRING NL PUNCT EOF
_TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+|\\\r?\n)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n)
  | (?P<string>"[^"]*")
  | (?P<badstring>")
  | (?P<op>==|!=|<=|>=|<<|>>)
  | (?P<word>[A-Za-z0-9_:\[][A-Za-z0-9_:./\-*\[\]%]*)
  | (?P<punct>[{}()\[\];,.=<>!&|^@$/\-*:~+])
""", re.VERBOSE)


@attrs.define(slots=True)
class Token:
    kind: str  # WORD STRING NL PUNCT EOF
    text: str  # for STRING: the unquoted text
    line: int
    col: int
    file: str = "<input>"

    def loc(self) -> Loc:
        return Loc(self.file, self.line, self.col)

    def is_(self, text: str) -> bool:
        return self.text == text and self.kind in ("WORD", "PUNCT")


def tokenize(text: str, filename: str = "<input>") -> list[Token]:
    """All tokens of `text`, ending with an EOF token.  Newlines are tokens (they end rules)."""
    out: list[Token] = []
    append = out.append
    pos, n = 0, len(text)
    line, line_start = 1, 0
    match = _TOKEN_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise FwcSyntaxError(f"unexpected character {text[pos]!r}",
                                 Loc(filename, line, pos - line_start + 1),
                                 _line_text(text, line_start))
        kind = m.lastgroup
        s = m.group()
        col = pos - line_start + 1
        if kind == "word":
            append(Token("WORD", s, line, col, filename))
        elif kind == "nl":
            append(Token("NL", "\n", line, col, filename))
            line += 1
            line_start = m.end()
        elif kind == "ws":
            if "\n" in s:  # backslash continuation
                line += 1
                line_start = m.end()
        elif kind == "punct" or kind == "op":
            append(Token("PUNCT", s, line, col, filename))
        elif kind == "string":
            # nft's scanner: `"[^"]*"`, no escapes, and it may span lines
            append(Token("STRING", s[1:-1], line, col, filename))
            if "\n" in s:
                line += s.count("\n")
                line_start = pos + s.rindex("\n") + 1
        elif kind == "badstring":
            raise FwcSyntaxError("unterminated string", Loc(filename, line, col),
                                 _line_text(text, line_start))
        pos = m.end()
    out.append(Token("EOF", "", line, pos - line_start + 1, filename))
    return out


def _line_text(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def source_line(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


def iter_lines(text: str) -> Iterator[str]:
    yield from text.split("\n")
