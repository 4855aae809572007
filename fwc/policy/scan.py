"""The policy parser's fast path: rule, definition and header bodies scanned by hand.

pyparsing costs about 0.1 ms per statement (dozens of element calls each), which dominated
`fwc compile` on large policies.  These functions read the same grammar (docs/policy.md,
parser.py) with the same compiled regexes at the same positions and make the same choices
pyparsing would (MatchFirst order, Keyword boundaries, whitespace " \\n\\t\\r"), returning the
same tokens `(kind, text, offset)`.

They only ever accept: anything unusual -- a statement that does not parse, a dangling comma,
a tab (pyparsing expands tabs, which moves columns), a quoted string -- returns None and the
caller parses the line with the pyparsing grammar, which then produces the result or its
located error exactly as before.  So valid input is parsed the same either way and every
error message still comes from one place.  tests/test_policy_scan.py checks the two agree.
"""

from __future__ import annotations

import re
import string
from typing import Optional

from fwc.policy import parser as P

_ws = re.compile(r"[ \n\t\r]*").match  # pyparsing's default whitespace
IDENT = frozenset(string.ascii_letters + string.digits + "_$")  # Keyword.DEFAULT_KEYWORD_CHARS
# every clause keyword of parser.CLAUSE, where pyparsing's Keyword would match it (not
# followed by a keyword character; the preceding character is checked separately)
_clause_kw = re.compile(r"(?:from|to|iif|oif|state|status|icmpv6|icmp|log|rate|comment|with)"
                        r"(?![A-Za-z0-9_$])").match
_name = re.compile(P.NAME_RE).match
_num = re.compile(P.NUM_RE).match
_rate = re.compile(P.RATE_RE).match
_target = re.compile(P.TARGET_RE).match
_def_name = re.compile(P.DEF_NAME_RE).match

_LISTS = {"from": P.ADDR_LIST.spec, "to": P.ADDR_LIST.spec, "iif": P.IFACE_LIST.spec,
          "oif": P.IFACE_LIST.spec, "state": P.STATE_LIST.spec, "status": P.STATUS_LIST.spec}
_SVC = P.SVC_LIST.spec
# from/to/iif/oif take the same values (parser._VALUE_RES)
assert P.ADDR_LIST.spec.whole.pattern == P.IFACE_LIST.spec.whole.pattern
_kw_values = re.compile(r"(from|to|iif|oif)(?![A-Za-z0-9_$])[ \n\t\r]*("
                        + P.ADDR_LIST.spec.whole.pattern + ")").match
_ICMP = P.ICMP_LIST.spec
_DEF = P.DEF_LIST.spec


def _keyword(s: str, i: int, word: str) -> bool:
    """pyparsing Keyword(word) at i."""
    end = i + len(word)
    return (s.startswith(word, i) and (i == 0 or s[i - 1] not in IDENT)
            and (end >= len(s) or s[end] not in IDENT))


def _list_at(spec, s: str, i: int):
    """(tokens, end) of the list element at i (after blanks), or None when it does not match
    or a comma follows it (pyparsing: `COMMA - item` fails there)."""
    i = _ws(s, i).end()
    m = spec.whole.match(s, i)
    if m is None:
        return None
    end = m.end()
    k = _ws(s, end).end()
    if k < len(s) and s[k] == ",":
        return None
    return spec.split(m.group(), i), end


def _optional(s: str, j: int, kw: str, match, kind: str):
    """An optional `KW VALUE` after position j: (its tokens, end), ([], j) when KW is not
    there, None when KW has no VALUE (the caller then leaves the line to pyparsing)."""
    jk = _ws(s, j).end()
    if not _keyword(s, jk, kw):
        return [], j
    jv = _ws(s, jk + len(kw)).end()
    m = match(s, jv)
    if m is None:
        return None
    return [("kw", kw, jk), (kind, m.group(), jv)], m.end()


# The usual rule body: an optional service name, then from/to/iif/oif clauses of one name
# each, words separated by blanks.  A word that is a plain name (NAME_RE as a whole, not a clause
# keyword, no character an address or service needs) is a "name" token wherever the lists read
# it, so these need no list regex; anything else goes through rule()'s loop below.
_PLAIN = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_.+*-]*").fullmatch
_WORDS = re.compile(r"[^ \n\t\r]+").finditer
_LIST_KWS = frozenset(("from", "to", "iif", "oif"))
_KEYWORDS = frozenset(P.CLAUSE_KEYWORDS)


def _plain_name(w: str) -> bool:
    return _PLAIN(w) is not None and w not in _KEYWORDS and "," not in w


def _simple_rule(s: str, i: int) -> Optional[list]:
    words = [(m.group(), m.start()) for m in _WORDS(s, i)]
    out = []
    k = 0
    if words and words[0][0] not in _LIST_KWS:
        w, o = words[0]
        if not _plain_name(w):
            return None
        out.append([("name", w, o)])
        k = 1
    while k < len(words):
        if k + 1 >= len(words):
            return None
        (kw, ko), (w, o) = words[k], words[k + 1]
        if kw not in _LIST_KWS or not _plain_name(w):
            return None
        out.append([("kw", kw, ko), ("name", w, o)])
        k += 2
    return out


def rule(s: str, i: int) -> Optional[list]:
    """RULE_BODY: [group, ...], each group [(kind, text, offset), ...]."""
    if i == 0 or s[i - 1] not in IDENT:
        got = _simple_rule(s, i)
        if got is not None:
            return got
    return _rule(s, i)


def _rule(s: str, i: int) -> Optional[list]:
    n = len(s)
    out = []
    while True:
        i = _ws(s, i).end()
        if i >= n:
            return out
        # the usual clause in one match: from/to/iif/oif and a list.  Tried before the services
        # (the first alternative) because where it matches they cannot: a value list never
        # starts with one of these words followed by a blank or a value
        k = _kw_values(s, i) if (i == 0 or s[i - 1] not in IDENT) else None
        if k is not None:
            end = k.end()
            j = _ws(s, end).end()
            if j < n and s[j] == ",":
                return None
            out.append([("kw", k.group(1), i)] + _LISTS[k.group(1)].split(k.group(2), k.start(2)))
            i = end
            continue
        m = _SVC.whole.match(s, i)  # the first alternative: services
        if m is not None:
            end = m.end()
            k = _ws(s, end).end()
            if k < n and s[k] == ",":
                return None
            out.append(_SVC.split(m.group(), i))
            i = end
            continue
        if s.startswith("->", i):
            j = _ws(s, i + 2).end()
            t = _target(s, j)
            if t is None:
                return None
            out.append([("kw", "->", i), ("target", t.group(), j)])
            i = t.end()
            continue
        if i and s[i - 1] in IDENT:
            return None
        k = _clause_kw(s, i)
        if k is None:
            return None
        word = k.group()
        head = ("kw", word, i)
        j = k.end()
        spec = _LISTS.get(word)
        if spec is not None:
            got = _list_at(spec, s, j)
            if got is None:
                return None
            out.append([head] + got[0])
            i = got[1]
        elif word in ("icmp", "icmpv6"):
            got = _list_at(_ICMP, s, j)
            if got is None:
                jj = _ws(s, j).end()
                if _ICMP.whole.match(s, jj) is not None:
                    return None  # a list followed by a comma
                out.append([head])
                i = j
            else:
                out.append([head] + got[0])
                i = got[1]
        elif word == "log":  # no quoted string here (the caller checked)
            got = _optional(s, j, "level", _name, "name")
            if got is None:
                return None
            out.append([head] + got[0])
            i = got[1]
        elif word == "rate":
            jr = _ws(s, j).end()
            r = _rate(s, jr)
            if r is None:
                return None
            got = _optional(s, r.end(), "burst", _num, "number")
            if got is None:
                return None
            out.append([head, ("rate", r.group(), jr)] + got[0])
            i = got[1]
        elif word == "with":
            jn = _ws(s, j).end()
            nm = _name(s, jn)
            if nm is None:
                return None
            out.append([head, ("name", nm.group(), jn)])
            i = nm.end()
        else:  # comment needs a quoted string
            return None


def definition(s: str, i: int) -> Optional[list]:
    """DEF_BODY: [name, value, ...]."""
    n = len(s)
    i = _ws(s, i).end()
    m = _def_name(s, i)
    if m is None:
        return None
    out = [("name", m.group(), i)]
    j = _ws(s, m.end()).end()
    if not s.startswith("=", j):
        return None
    got = _list_at(_DEF, s, j + 1)
    if got is None or _ws(s, got[1]).end() < n:
        return None
    out += got[0]
    return out


def header(s: str, i: int) -> Optional[list]:
    """HEADER_BODY: [("kw", "policy", o), name, option names...]."""
    n = len(s)
    out = []
    i = _ws(s, i).end()
    if _keyword(s, i, "policy"):
        j = _ws(s, i + 6).end()
        m = _name(s, j)
        if m is None:
            return None
        out += [("kw", "policy", i), ("name", m.group(), j)]
        i = m.end()
    while True:
        i = _ws(s, i).end()
        m = _name(s, i)
        if m is None:
            break
        out.append(("name", m.group(), i))
        i = m.end()
    return out if i >= n else None


FAST = {id(P.RULE_BODY): rule, id(P.DEF_BODY): definition, id(P.HEADER_BODY): header}
