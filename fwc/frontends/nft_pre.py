"""Token-level preprocessing of nft text: `include "file"` and `define`/`redefine`/`undefine`
with `$name` expansion, done in one pass so later stages see a flat token list."""

from __future__ import annotations

import glob
import os
from typing import Optional, Sequence

from fwc.errors import FwcSyntaxError
from fwc.frontends import decode_source, read_limited
from fwc.frontends.nft_lex import Token, source_line, tokenize
from fwc.ir import Loc


class Sources:
    """Texts of every file read, for error carets."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def line(self, loc: Loc) -> Optional[str]:
        t = self.texts.get(loc.file)
        return None if t is None else source_line(t, loc.line)

    def error(self, msg: str, tok_or_loc) -> FwcSyntaxError:
        loc = tok_or_loc.loc() if isinstance(tok_or_loc, Token) else tok_or_loc
        return FwcSyntaxError(msg, loc, self.line(loc))


def preprocess(text: str, filename: str, include_dirs: Sequence[str], sources: Sources) -> list[Token]:
    sources.texts[filename] = text
    out: list[Token] = []
    defines: dict[str, list[Token]] = {}
    tokens = tokenize(text, filename)
    _expand(tokens, filename, include_dirs, sources, out, defines,
            [os.path.realpath(filename)] if os.path.exists(filename) else [])
    out.append(tokens[-1])  # the main file's EOF
    return out


def _at_statement_start(out: list[Token]) -> bool:
    return not out or out[-1].kind == "NL" or out[-1].text in (";", "{", "}") and out[-1].kind == "PUNCT"


def _expand(tokens: list[Token], filename: str, include_dirs: Sequence[str], sources: Sources,
            out: list[Token], defines: dict, stack: list[str]) -> None:
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.kind == "EOF":
            break
        if t.kind == "WORD" and t.text in ("define", "redefine") and _at_statement_start(out):
            i = _define(tokens, i, defines, sources, t.text == "redefine")
            continue
        if t.kind == "WORD" and t.text == "undefine" and _at_statement_start(out):
            name = tokens[i + 1]
            if name.kind != "WORD" or name.text not in defines:
                raise sources.error(f"undefine of unknown variable {name.text!r}", name)
            del defines[name.text]
            i += 2
            continue
        if t.kind == "WORD" and t.text == "include" and _at_statement_start(out):
            path_tok = tokens[i + 1]
            if path_tok.kind != "STRING":
                raise sources.error("include needs a quoted file name", path_tok)
            for path in _resolve_include(path_tok, filename, include_dirs, sources):
                real = os.path.realpath(path)
                if real in stack:
                    raise sources.error(f"include loop: {path_tok.text!r} is already being read",
                                        path_tok)
                try:
                    sub_text = decode_source(read_limited(path), path)  # (as the main file)
                except OSError as e:
                    raise sources.error(f"cannot read include {path_tok.text!r}: {e.strerror}",
                                        path_tok)
                sources.texts[path] = sub_text
                _expand(tokenize(sub_text, path), path, include_dirs, sources, out, defines,
                        stack + [real])
                out.append(Token("NL", "\n", path_tok.line, path_tok.col, filename))
            i += 2
            continue
        if t.kind == "PUNCT" and t.text == "$":
            name = tokens[i + 1] if i + 1 < n else t
            if name.kind != "WORD" or name.col != t.col + 1 or name.line != t.line:
                raise sources.error("expected a variable name after '$'", t)
            import re as _re
            base = _re.match(r"[A-Za-z0-9_]*", name.text).group()
            rest = name.text[len(base):]
            if base not in defines:
                raise sources.error(f"undefined variable ${base or name.text}", t)
            value = defines[base]
            prev = tokens[i - 1] if i else None
            if prev is not None and prev.kind == "WORD" and prev.text[-1:] in (":", "-") \
                    and prev.line == t.line and prev.file == t.file \
                    and prev.col + len(prev.text) == t.col and out and out[-1].kind == "WORD" \
                    and len(value) == 1 and value[0].kind == "WORD":
                # `10.0.0.1:$port`, `1000-$hi`: nft's scanner reads the variable as its own
                # token after ':' or '-'; ours had glued those to the word before, so glue the
                # value on too (nft refuses `10.0.0.0/$len`)
                last = out.pop()
                out.append(Token("WORD", last.text + value[0].text + rest, last.line, last.col,
                                 last.file))
            elif rest and len(value) == 1 and value[0].kind in ("WORD", "STRING"):
                v = value[0]
                out.append(Token("WORD", v.text + rest, t.line, t.col, t.file))  # `$addr:80`
            else:
                out.extend(value)
                if rest:
                    out.append(Token("WORD", rest, name.line, name.col + len(base), name.file))
            i += 2
            continue
        out.append(t)
        i += 1


def _define(tokens: list[Token], i: int, defines: dict, sources: Sources, redefine: bool) -> int:
    name = tokens[i + 1]
    if name.kind != "WORD":
        raise sources.error("expected a variable name after define", name)
    if name.text in defines and not redefine:
        raise sources.error(f"redefinition of variable '{name.text}' (nft: use redefine)", name)
    eq = tokens[i + 2]
    if not eq.is_("="):
        raise sources.error("expected '=' after the variable name", eq)
    j = i + 3
    value: list[Token] = []
    depth = 0
    while j < len(tokens):
        t = tokens[j]
        if t.kind == "EOF" or (depth == 0 and (t.kind == "NL" or t.is_(";"))):
            break
        if t.is_("{"):
            depth += 1
        elif t.is_("}"):
            depth -= 1
            if depth < 0:
                raise sources.error(f"unbalanced '}}' in the value of variable {name.text}", t)
        if not (t.kind == "NL" and depth > 0):
            value.append(t)
        j += 1
    if depth > 0:  # (else the rest of the file would vanish into the value)
        opening = next(t for t in value if t.is_("{"))
        raise sources.error(f"'{{' without its '}}' in the value of variable {name.text}", opening)
    if not value:
        raise sources.error(f"empty value for variable {name.text}", eq)
    expanded: list[Token] = []
    _expand(value, tokens[i].file, (), sources, expanded, defines, [])
    defines[name.text] = expanded
    return j


def _resolve_include(tok: Token, filename: str, include_dirs: Sequence[str], sources: Sources) -> list[str]:
    """Relative includes are resolved against the including file's directory and must stay inside
    it (or inside one of include_dirs); globs expand in sorted order, like nft."""
    rel = tok.text
    base_dir = os.path.dirname(os.path.abspath(filename)) if filename and not filename.startswith("<") \
        else os.getcwd()
    allowed = [os.path.realpath(base_dir)] + [os.path.realpath(d) for d in include_dirs]
    candidates = [rel] if os.path.isabs(rel) else [os.path.join(base_dir, rel)] + \
        [os.path.join(d, rel) for d in include_dirs]
    for cand in candidates:
        paths = sorted(glob.glob(cand)) if any(c in cand for c in "*?[") else \
            ([cand] if os.path.exists(cand) else [])
        if not paths:
            continue
        for p in paths:
            real = os.path.realpath(p)
            if not any(real == a or real.startswith(a + os.sep) for a in allowed):
                raise sources.error(f"include {rel!r} escapes the including file's directory "
                                    "(allow it with an include directory)", tok)
        return paths
    if any(c in rel for c in "*?["):
        return []  # nft: a glob matching nothing is fine
    raise sources.error(f"include file {rel!r} not found", tok)
