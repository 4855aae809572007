"""Shell-like word splitting that remembers where each word started (for located errors)."""

from __future__ import annotations

import re
from typing import Callable, NamedTuple, Optional

from fwc.errors import FwcSyntaxError, Unsupported
from fwc.ir import Loc


_SPECIAL = re.compile(r"[\'\"\\#$`;|&<>()]")
_WORD = re.compile(r"[^ \t\r\n\f\v]+")
_ODD_SPACE = re.compile(r"[\t\r\n\f\v]|  ")
# what the "..." fast path leaves to the full splitter: escapes, single quotes, comments, and in
# scripts expansions and shell operators
_NOT_PLAIN_QUOTES = re.compile(r"[\'\\#`;|&<>()]")
_NOT_PLAIN_QUOTES_SH = re.compile(r"[\'\\#`;|&<>()$]")
_QUOTED_WORD = re.compile(r'(?:[^ \t\r\n\f\v"]+|"[^"]*")+')


class Word(NamedTuple):
    text: str
    col: int  # 1-based column of the word's first character
    quoted: bool = False


_new = tuple.__new__  # Word without its Python-level __new__: the splitter makes ~11 per line


def _plain_words(line: str) -> list[Word]:
    """The words of a line without quotes, escapes or expansions."""
    if _ODD_SPACE.search(line):
        return [Word(m.group(), m.start() + 1) for m in _WORD.finditer(line)]
    words, col = [], 1  # single spaces only: columns by counting (twice as fast)
    for w in line.split(" "):
        if w:
            words.append(_new(Word, (w, col, False)))
        col += len(w) + 1
    return words


def split_words(line: str, loc: Loc, expand: Optional[Callable[[str, int], str]] = None,
                source: Optional[str] = None, field_split: bool = True) -> list[Word]:
    """Split `line` like a POSIX shell: '...' literal, "..." with backslash escapes and
    (when `expand` is given) $VAR expansion, bare backslash escapes the next char.
    A `#` at the start of a word starts a comment.  An unquoted expansion is split into words
    at blanks, and one that comes out empty is no word, as in the shell (`field_split=False`:
    not, as in the value of an assignment)."""
    if not _SPECIAL.search(line):  # fast path: plain words (most iptables-save lines)
        return _plain_words(line)
    if not (_NOT_PLAIN_QUOTES if expand is None else _NOT_PLAIN_QUOTES_SH).search(line) and \
            line.count('"') % 2 == 0:
        # second fast path: words with "..." parts only (iptables-save's --comment and
        # --log-prefix); no escapes, so a quoted part is its text without the quotes
        out = []
        for m in _QUOTED_WORD.finditer(line):
            g = m.group()
            out.append(_new(Word, (g.replace('"', ""), m.start() + 1, '"' in g)))
        return out
    words: list[Word] = []
    i, n = 0, len(line)
    src = source if source is not None else line

    def err(msg: str, col: int) -> FwcSyntaxError:
        # valid shell fwc does not follow is unsupported (exit 1), not a syntax error
        cls = Unsupported if ("not supported" in msg or "glob" in msg) else FwcSyntaxError
        return cls(msg, Loc(loc.file, loc.line, col), src)

    while i < n:
        while i < n and line[i] in " \t\r\n\f\v":
            i += 1
        if i >= n or line[i] == "#":
            break
        start = i
        buf: list[str] = []
        quoted = False
        expanded = False  # an unquoted $VAR took part: an empty result is no word at all
        while i < n and line[i] not in " \t\r\n\f\v":
            c = line[i]
            if c == "'":
                j = line.find("'", i + 1)
                if j < 0:
                    raise err("unterminated single quote", i + 1)
                buf.append(line[i + 1:j])
                i = j + 1
                quoted = True
            elif c == '"':
                i += 1
                quoted = True
                while True:
                    if i >= n:
                        raise err("unterminated double quote", start + 1)
                    c = line[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\" and i + 1 < n and line[i + 1] in '"\\$`':
                        buf.append(line[i + 1])
                        i += 2
                    elif c == "$" and expand is not None:
                        text, i = _expand_at(line, i, expand, err)
                        buf.append(text)
                    elif c == "`" and expand is not None:
                        raise err("command substitution is not supported", i + 1)
                    else:
                        buf.append(c)
                        i += 1
            elif c == "\\" and i + 1 < n:
                buf.append(line[i + 1])
                i += 2
            elif c == "$" and expand is not None:
                at = i
                text, i = _expand_at(line, i, expand, err)
                expanded = True
                parts = _IFS.split(text) if field_split else [text]
                if len(parts) > 1 and any(ch in text for ch in "*?["):
                    raise err("an unquoted variable holding spaces and a glob character: the "
                              "shell would expand it against files; quote it", at + 1)
                buf.append(parts[0])
                for part in parts[1:]:  # the shell splits an unquoted expansion into words
                    if "".join(buf) or quoted:
                        words.append(Word("".join(buf), start + 1, quoted))
                    buf, quoted, start = [part], False, at
            elif c in "`" and expand is not None:
                raise err("command substitution is not supported", i + 1)
            elif c in ";|&<>()" and expand is not None:
                raise err(_operator_error(line, i, words, buf), i + 1)
            else:
                buf.append(c)
                i += 1
        if "".join(buf) or quoted or not expanded:
            words.append(Word("".join(buf), start + 1, quoted))
    return words


_IFS = re.compile(r"[ \t\n]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _operator_error(line: str, i: int, words: list, buf: list) -> str:
    """Why the shell operator at line[i] stops fwc: valid sh it does not follow, or what sh
    itself refuses (the script reader has cut the command at every other `;`, `&&`, `||`)."""
    c, sh = line[i], " (a shell syntax error)"
    if c == ";":
        return "';;' outside a case ... esac" + sh
    text = "".join(buf)
    if c == "(" and (text.endswith("=") or (words and words[0].text in ("declare", "typeset",
                                                                      "local"))):
        # `PORTS=(22 80)`, `X+=(c)`, `declare -a X=(a b)`: a bash array (its `)` may close
        # it lines later, so a lone `)` is not called an error either)
        return "bash arrays (NAME=(...)) are not supported"
    if c == ")":
        return "')' without its '(' (or closing a bash array) is not supported"
    # `(` may only start a subshell or follow a function's name (`f()`, `f ( )`)
    name = text if not words else words[0].text if len(words) == 1 and not buf else "?"
    if c == "(" and not (name == "" or _NAME.fullmatch(name)):
        return "'(' in the middle of a command" + sh
    if c in "<>" and not line[i:].lstrip("<>&").strip():
        return "a redirection without its file" + sh
    return f"shell operator {c!r} is not supported in iptables scripts"


_RESTORE_SEP = " \t\r\n\f\v"
# a word of a line without backslashes: plain characters, then at most one "..." part, whose
# closing quote ends the word
_RESTORE_WORD = re.compile(r'[^ \t\r\n\f\v"]+(?:"[^"]*")?|"[^"]*"')


def split_restore_words(line: str, loc: Loc, source: Optional[str] = None) -> list[Word]:
    """Split a rule line of an iptables-restore file the way iptables-restore does, which is
    not the shell's way: only "..." quotes, inside them a backslash takes the next character
    literally (iptables-save writes " \\ and ' as \\" \\\\ \\'), and the closing quote ends
    the word.  Outside quotes ', \\ and # are ordinary characters."""
    if '"' not in line:  # nothing but plain words
        return _plain_words(line)
    if "\\" not in line and line.count('"') % 2 == 0:  # iptables-save's --comment, --log-prefix
        return [_new(Word, (g.replace('"', ""), m.start() + 1, '"' in g))
                for m in _RESTORE_WORD.finditer(line) for g in (m.group(),)]
    words = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in _RESTORE_SEP:
            i += 1
        if i >= n:
            break
        start, buf, quoted = i, [], False
        while i < n:
            c = line[i]
            if c == '"':
                quoted = True
                i += 1
                while True:
                    if i >= n:
                        raise FwcSyntaxError("unterminated double quote",
                                             Loc(loc.file, loc.line, start + 1),
                                             source if source is not None else line)
                    c = line[i]
                    if c == "\\" and i + 1 < n:
                        buf.append(line[i + 1])
                        i += 2
                    elif c == '"':
                        i += 1
                        break
                    else:
                        buf.append(c)
                        i += 1
                break  # iptables-restore ends the word at the closing quote
            if c in _RESTORE_SEP:
                break
            buf.append(c)
            i += 1
        words.append(_new(Word, ("".join(buf), start + 1, quoted)))
    return words


def _expand_at(line: str, i: int, expand, err) -> tuple[str, int]:
    """Expand $NAME or ${NAME} starting at line[i] == '$'."""
    n = len(line)
    if i + 1 < n and line[i + 1] == "{":
        j = line.find("}", i + 2)
        if j < 0:
            raise err("unterminated ${...}", i + 1)
        name = line[i + 2:j]
        if not name.replace("_", "a").isalnum():
            raise err(f"parameter expansion ${{{name}}} is not supported", i + 1)
        return expand(name, i + 1), j + 1
    if i + 1 < n and line[i + 1] == "(":
        if line.startswith("((", i + 1):
            raise err("arithmetic expansion $((...)) is not supported", i + 1)
        raise err("command substitution is not supported", i + 1)
    j = i + 1
    while j < n and (line[j].isalnum() or line[j] == "_"):
        j += 1
    if j == i + 1:
        return "$", i + 1
    return expand(line[i + 1:j], i + 1), j
