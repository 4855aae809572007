"""Policy text -> syntax tree.

The file is first cut into logical lines (comments removed, a line ending in ',' or '\\'
continues on the next one, `{` ends a chain header, `}` closes it); each logical line is one
statement, parsed by a small pyparsing grammar chosen by its first word.  Columns are mapped
back to the physical lines so every error is `FILE:LINE:COL`.
"""

from __future__ import annotations

import difflib
import re
from typing import Optional

import attrs
import pyparsing as pp

from fwc.errors import FwcSyntaxError
from fwc.ir import Loc
from fwc.policy.ast import ChainDecl, Clause, Definition, HelperDecl, Include, RuleStmt, Tok

DEFINITION_KINDS = ("host", "network", "set", "service", "zone", "define")
DIRECTIONS = ("input", "output", "forward")
FILTER_ACTIONS = ("allow", "accept", "drop", "reject")
NAT_ACTIONS = ("masquerade", "snat", "dnat", "redirect")
STATEMENTS = DEFINITION_KINDS + DIRECTIONS + ("nat", "include", "helper") + FILTER_ACTIONS \
    + NAT_ACTIONS
CLAUSE_KEYWORDS = ("from", "to", "iif", "oif", "state", "status", "icmp", "icmpv6", "log",
                   "level", "rate", "burst", "comment", "with")
RESERVED = frozenset(CLAUSE_KEYWORDS + STATEMENTS + ("policy", "on", "any"))


def suggest(word: str, choices) -> str:
    """' (did you mean 'x'?)' or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------- logical lines


@attrs.define
class LogicalLine:
    text: str
    segments: list  # (offset in text, line number, 0-based column of that offset)
    source: list  # physical source lines, for caret display
    locs: dict = attrs.field(factory=dict, init=False, repr=False, eq=False)  # offset -> Loc

    def loc(self, file: str, offset: int) -> Loc:
        got = self.locs.get(offset)
        if got is not None and got.file == file:
            return got
        seg = self.segments[0]
        for s in self.segments:
            if s[0] <= offset:
                seg = s
        got = self.locs[offset] = Loc(file, seg[1], seg[2] + (offset - seg[0]) + 1)
        return got

    def source_at(self, offset: int) -> str:
        seg = self.segments[0]
        for s in self.segments:
            if s[0] <= offset:
                seg = s
        return self.source[seg[1] - 1]


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\]|\\.)*"?|#')


def _strip_comment(line: str) -> str:
    if "#" not in line:
        return line
    if '"' not in line:
        return line[: line.index("#")]
    for m in _STRING_OR_COMMENT.finditer(line):
        if m.group() == "#":
            return line[: m.start()]
    return line


def physical_lines(text: str) -> list[str]:
    """Lines end at \n (or \r\n) only: str.splitlines() also ends one at \f, \v, \x1c-\x1e,
    U+0085, U+2028/9 and a lone \r, which would turn the rest of a `# comment` (what every
    editor shows on the comment's line) into a rule."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def logical_lines(text: str) -> list[LogicalLine]:
    physical = physical_lines(text)
    out: list[LogicalLine] = []
    pending: Optional[LogicalLine] = None
    for n, raw in enumerate(physical, 1):
        body = _strip_comment(raw).rstrip()
        stripped = body.lstrip()
        if not stripped:
            continue
        col0 = len(body) - len(stripped)
        if pending is None:
            pending = LogicalLine("", [], physical)
        elif pending.text:
            pending.text += " "
        pending.segments.append((len(pending.text), n, col0))
        cont = stripped.endswith(",") or stripped.endswith("\\")
        pending.text += stripped[:-1] if stripped.endswith("\\") else stripped
        if not cont:
            if pending.text:
                out.append(pending)
            pending = None
    if pending is not None and pending.text:
        out.append(pending)
    return out


# --------------------------------------------------------------------------- grammar


def _leaf(expr: pp.ParserElement, kind: str) -> pp.ParserElement:
    return expr.set_parse_action(lambda s, l, t: [(kind, t[0], l)])


def _kw(word: str) -> pp.ParserElement:
    return _leaf(pp.Keyword(word), "kw")


V4 = r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2}|-\d{1,3}(?:\.\d{1,3}){3})?"
V6 = r"(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]+(?:\.\d{1,3}){0,3}(?:/\d{1,3}|-[0-9A-Fa-f:.]+)?"
ADDR_RE = f"(?:{V4})(?![\\w.:/-])|(?:{V6})(?![\\w.:/-])"
SVC_RE = r"[A-Za-z][A-Za-z0-9-]*/[A-Za-z0-9-]+(?![\w/])"
# a keyword lookahead inside the regex: a NotAny over 14 Keywords costs more than the rest
_NOT_KW = "(?!(?:" + "|".join(CLAUSE_KEYWORDS) + r")(?![\w.+*$-]))"
NAME_RE = _NOT_KW + r"\$?[A-Za-z_][A-Za-z0-9_.+*-]*"
_PROTO_KW = r"(?:icmpv6|icmp)(?![\w.+*$-])"  # (clause keywords that also name a protocol)
NUM_RE = r"\d+(?![\w.:/])"
ADDR = _leaf(pp.Regex(ADDR_RE), "addr").set_name("address")
SVC = _leaf(pp.Regex(SVC_RE), "svc").set_name("service")
# the parse action sits on the Regex so its location is after the skipped blanks
NAME = _leaf(pp.Regex(NAME_RE), "name").set_name("name")
NUM = _leaf(pp.Regex(NUM_RE), "number").set_name("number")
def _string(s, loc, t):
    """A "..." string: \\" and \\\\ are its only escapes; a control character (or another
    escape, such as \\n) is refused, since no backend can write it as it was meant (a newline
    in an iptables-restore line starts another rule)."""
    body = t[0][1:-1]
    for k, ch in enumerate(body):
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise pp.ParseFatalException(s, loc + 1 + k, f"{_FATAL}a string cannot hold a "
                                         f"control character ({ch!r})")
    bad = next((m for m in re.finditer(r"\\(.)", body, re.S) if m.group(1) not in '"\\'), None)
    if bad:
        raise pp.ParseFatalException(s, loc + 1 + bad.start(), f"{_FATAL}unknown escape "
                                     f"'{bad.group()}' in a string (only \\\" and \\\\)")
    return [("string", re.sub(r'\\(["\\])', r"\1", body), loc)]


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)  # (a whole "..." string)
_FATAL = "fwc: "  # (marks the parse errors whose message is already the whole story)
STRING = pp.Regex(_STRINGS).set_parse_action(_string).set_name(
    'a "quoted string"')
VALUE = (ADDR | SVC | NAME).set_name("a name, address or service")
COMMA = pp.Suppress(",")


class ListSpec:
    """A comma-separated list as ONE regex (pyparsing's per-element overhead dominated the
    parse), split into located tokens.  The pyparsing element and the fast scanner
    (fwc/policy/scan.py) both use these compiled patterns, so they cut a list the same way."""

    def __init__(self, item_res: list[tuple[str, str]], what: str, protocols: str = ""):
        """protocols "list": the clause keywords icmp and icmpv6 are also names of their
        protocol, in a list of two or more (`allow ssh, icmp`; alone, `allow icmp` is the
        clause, which means the same); "any": wherever a name is (a definition)."""
        bare = "|".join(f"(?:{r})" for _, r in item_res)
        first = later = bare
        if protocols:
            later = f"{bare}|{_PROTO_KW}"
            first = later if protocols == "any" else f"{bare}|{_PROTO_KW}(?=[ \t\r]*,)"
            item_res = [(k, f"(?:{r})|{_PROTO_KW}" if k == "name" else r) for k, r in item_res]
        self.item = re.compile("|".join(f"(?P<{k}>{r})" for k, r in item_res))
        # (the blanks pyparsing skips elsewhere too: a \r before a comma is one)
        self.whole = re.compile(f"(?:{first})(?:[ \t\r]*,[ \t\r]*(?:{later}))*")
        self.what = what
        self.bare = later

    def split(self, text: str, loc: int) -> list:
        return [(m.lastgroup, m.group(), loc + m.start()) for m in self.item.finditer(text)]


def _list(item_res: list[tuple[str, str]], what: str, protocols: str = "") -> pp.ParserElement:
    """The pyparsing element of a ListSpec.  A comma the regex could not get past is followed
    by a bad item: `- item` reports it as 'expected WHAT' right there."""
    spec = ListSpec(item_res, what, protocols)
    whole = pp.Regex(spec.whole)
    whole.set_parse_action(lambda s, loc, toks: spec.split(toks[0], loc))
    whole.set_name(what)
    single = pp.Regex(spec.bare).set_name(what)
    single.set_parse_action(lambda s, loc, toks: spec.split(toks[0], loc))
    element = (whole + pp.Optional(COMMA - single)).set_name(what)
    element.spec = spec
    return element


_VALUE_RES = [("addr", ADDR_RE), ("svc", SVC_RE), ("name", NAME_RE)]
ADDR_LIST = _list(_VALUE_RES, "an address, host, network, set or zone")
IFACE_LIST = _list(_VALUE_RES, "an interface or zone name")
STATE_LIST = _list([("name", NAME_RE)], "a conntrack state (new, established...)")
STATUS_LIST = _list([("name", NAME_RE)], "a conntrack status (dnat, snat)")
ICMP_LIST = _list([("name", NAME_RE), ("number", NUM_RE)], "an ICMP type")
SVC_LIST = _list(_VALUE_RES, "a service", protocols="list")

RATE_RE = r"\d+/[A-Za-z]+"
TARGET_RE = r"[^\s,]+"
DEF_NAME_RE = r"\$?[A-Za-z_][A-Za-z0-9_.+*-]*"
DEF_LIST = _list(_VALUE_RES + [("number", NUM_RE)], "a value", protocols="any")

# most frequent first: every failed alternative costs a full pyparsing attempt
CLAUSE = pp.MatchFirst([
    pp.Group(SVC_LIST),
    pp.Group(_kw("from") - ADDR_LIST),
    pp.Group(_kw("to") - ADDR_LIST),
    pp.Group(_kw("iif") - IFACE_LIST),
    pp.Group(_kw("oif") - IFACE_LIST),
    pp.Group(_kw("state") - STATE_LIST),
    pp.Group(_kw("status") - STATUS_LIST),
    pp.Group((_kw("icmpv6") | _kw("icmp")) + pp.Optional(ICMP_LIST)),
    pp.Group(_kw("log") + pp.Optional(STRING) + pp.Optional(_kw("level") - NAME)),
    pp.Group(_kw("rate") - _leaf(pp.Regex(RATE_RE), "rate").set_name(
        "a rate like 10/second") + pp.Optional(_kw("burst") - NUM)),
    pp.Group(_kw("comment") - STRING),
    pp.Group(_kw("with") - NAME.copy().set_name("a reject type")),
    pp.Group(_leaf(pp.Literal("->"), "kw") - _leaf(pp.Regex(TARGET_RE), "target").set_name(
        "a translation target like 192.0.2.10:80")),
])
RULE_BODY = pp.ZeroOrMore(~pp.StringEnd() + CLAUSE) + pp.StringEnd()  # no 13 failed tries at the end

DEF_NAME = _leaf(pp.Regex(DEF_NAME_RE), "name")  # reserved: checked later
DEF_BODY = DEF_NAME.set_name("the name being defined") + pp.Suppress("=") \
    - DEF_LIST + pp.StringEnd()
INCLUDE_BODY = STRING + pp.StringEnd()
HELPER_BODY = NAME.copy().set_name("a helper name (ftp, tftp, sip...)") \
    + pp.Suppress(pp.Keyword("on")) - _list(_VALUE_RES, "a service like tcp/21") + pp.StringEnd()
HEADER_BODY = pp.Optional(_kw("policy") - NAME.copy().set_name("accept or drop")) \
    + pp.ZeroOrMore(NAME) + pp.StringEnd()


# --------------------------------------------------------------------------- statements


def _expected_name(e: pp.ParseBaseException) -> str:
    """The name of what a `-` stop in the grammar expected, or "": pyparsing before 3.2 gives
    the named element, later versions the group around it (the name is then in the message;
    an unnamed element's generated name holds grammar punctuation and is not shown)."""
    pe = e.parser_element
    if pe is not None and pe.customName:
        return pe.customName
    m = re.fullmatch(r"Expected ([a-z][^{}\[\]():]*)", str(e.msg))
    return m.group(1) if m else ""


class _Parser:
    def __init__(self, file: str):
        self.file = file

    def error(self, msg: str, ll: LogicalLine, offset: int) -> FwcSyntaxError:
        return FwcSyntaxError(msg, ll.loc(self.file, offset), ll.source_at(offset))

    def tok(self, ll: LogicalLine, t) -> Tok:
        kind, text, off = t
        return Tok(kind, text, ll.loc(self.file, off))

    def run(self, grammar: pp.ParserElement, ll: LogicalLine, start: int, what: str):
        text = ll.text[start:].rjust(len(ll.text))
        fast = _FAST.get(id(grammar))
        if fast is not None and "\t" not in text and '"' not in text:
            toks = fast(text, start)  # the same tokens, or None: let pyparsing say why
            if toks is not None:
                return toks
        try:
            # (pyparsing would expand tabs first: its offsets, so the columns, would move)
            grammar.keepTabs = True
            return grammar.parse_string(text, parse_all=True)
        except pp.ParseBaseException as e:
            raise self._syntax(e, ll, what) from None

    def _syntax(self, e: pp.ParseBaseException, ll: LogicalLine, what: str) -> FwcSyntaxError:
        off = min(e.loc, len(ll.text))
        m = re.match(r"\S+", ll.text[off:])
        found = m.group() if m else ""
        if isinstance(e, pp.ParseFatalException) and str(e.msg).startswith(_FATAL):
            return self.error(str(e.msg)[len(_FATAL):], ll, off)
        if found.startswith('"') and ll.text[off:].count('"') % 2:
            msg = "unterminated string: a closing '\"' is missing"
        elif isinstance(e, pp.ParseSyntaxException) and _expected_name(e):
            msg = f"expected {_expected_name(e)}" + (f", found '{found}'" if found
                                                     else " at end of line")
        elif found:
            word = re.match(r"[A-Za-z][\w-]*", found)
            hint = suggest(word.group(), CLAUSE_KEYWORDS) if word else ""
            msg = f"unexpected '{found}' in {what}{hint}"
        else:
            msg = f"incomplete {what}"
        return self.error(msg, ll, off)

    def statement(self, ll: LogicalLine, in_block: Optional[str]):
        m = _NONBLANK.match(ll.text)
        word = m.group()
        m2 = _WORD.match(word)
        first = m2.group() if m2 else word
        end = len(first)
        if first in DEFINITION_KINDS:
            if in_block:
                raise self.error(f"'{first}' definitions belong outside chain blocks", ll, 0)
            toks = self.run(DEF_BODY, ll, end, f"{first} definition")
            name = self.tok(ll, toks[0])
            return Definition(first, name, tuple(self.tok(ll, t) for t in toks[1:]),
                              ll.loc(self.file, 0))
        if first == "include":
            toks = self.run(INCLUDE_BODY, ll, end, "include")
            return Include(self.tok(ll, toks[0]), ll.loc(self.file, 0))
        if first == "helper":
            toks = self.run(HELPER_BODY, ll, end, "helper declaration")
            return HelperDecl(self.tok(ll, toks[0]), tuple(self.tok(ll, t) for t in toks[1:]),
                              ll.loc(self.file, 0))
        if first in FILTER_ACTIONS or first in NAT_ACTIONS:
            if in_block is None:
                raise self.error(f"rule '{first}' outside a chain: put it inside "
                                 "'input policy drop { ... }' (or output, forward, nat)", ll, 0)
            toks = self.run(RULE_BODY, ll, end, "rule")
            return self._rule_stmt(ll, first, toks)
        shown = first if len(first) <= 40 else first[:37] + "..."  # (a line of garbage)
        raise self.error(f"unknown statement '{shown}'{suggest(first[:40], STATEMENTS)}", ll, 0)

    def _rule_stmt(self, ll: LogicalLine, first: str, toks) -> RuleStmt:
        """The RuleStmt of a rule's token groups.  Kept lean, a big policy has thousands: on
        one physical line (the usual case) a column is the offset plus the line's start."""
        file = self.file
        if len(ll.segments) == 1:
            _, line, col0 = ll.segments[0]
            col1 = col0 + 1

            def loc(o):
                return Loc(file, line, col1 + o)
        else:
            def loc(o):
                return ll.loc(file, o)
        clauses = []
        target = None
        for g in toks:
            kind, word, off = g[0]
            if kind == "kw":
                if word == "->":
                    k, t, o = g[1]
                    target = Tok(k, t, loc(o))
                    continue
                values = g[1:]
            else:
                word, values = "svc", g
            clauses.append(Clause(word, tuple([Tok(k, t, loc(o)) for k, t, o in values]),
                                  loc(off)))
        at = loc(0)
        return RuleStmt(Tok("word", first, at), tuple(clauses), target, at, ll.source_at(0))

    def header(self, ll: LogicalLine, body: str):
        m = re.match(r"[A-Za-z][\w-]*", body)
        first = m.group() if m else body.split()[0] if body.split() else "{"
        if first not in DIRECTIONS and first != "nat":
            raise self.error(f"'{first}' cannot open a block: expected input, output, forward "
                             f"or nat{suggest(first, DIRECTIONS + ('nat',))}", ll, 0)
        if "{" in body or "}" in body:
            raise self.error("'{' must end the header line and each rule needs its own line",
                             ll, body.find("{") if "{" in body else body.find("}"))
        toks = self.run(HEADER_BODY, ll, len(first), f"{first} header") if len(body) > len(
            first) else []
        policy = None
        options = []
        toks = list(toks)
        if toks and toks[0][0] == "kw":
            policy = self.tok(ll, toks[1])
            toks = toks[2:]
        options = [self.tok(ll, t) for t in toks]
        return Tok("word", first, ll.loc(self.file, 0)), policy, tuple(options)


_NONBLANK = re.compile(r"\S+")
_WORD = re.compile(r"[A-Za-z][\w-]*")
_EMPTY_BLOCK = re.compile(r"\{\s*\}$")


def parse(text: str, file: str = "<policy>") -> list:
    """Parse policy text into a list of Definition | Include | HelperDecl | ChainDecl."""
    p = _Parser(file)
    out: list = []
    block = None  # (head tok, policy, options, rules list, loc, logical line)
    for ll in logical_lines(text):
        t = ll.text
        if t == "}":
            if block is None:
                raise p.error("'}' without an open block", ll, 0)
            head, policy, options, rules, loc = block
            out.append(ChainDecl(head, policy, options, tuple(rules), loc))
            block = None
            continue
        # (braces inside a "string" are text: blank the strings for the block checks)
        bare = _STRINGS.sub(lambda m: " " * len(m.group()), t) if '"' in t else t
        opens = bare.endswith("{")
        empty = _EMPTY_BLOCK.search(bare) if opens or "}" in bare else None
        if opens or empty:
            if block is not None:
                raise p.error("blocks do not nest: close the previous one with '}' first", ll, 0)
            body = t[: empty.start() if empty else len(t) - 1].rstrip()
            ll.text = body
            head, policy, options = p.header(ll, body)
            if empty:
                out.append(ChainDecl(head, policy, options, (), ll.loc(file, 0)))
            else:
                block = (head, policy, options, [], ll.loc(file, 0))
            continue
        m = _WORD.match(t)
        first = m.group() if m else ""
        if first in DIRECTIONS or first == "nat":
            if block is not None:
                raise p.error("blocks do not nest: close the previous one with '}' first", ll, 0)
            head, policy, options = p.header(ll, t)
            out.append(ChainDecl(head, policy, options, (), ll.loc(file, 0)))
            continue
        if "{" in bare or "}" in bare:
            off = min(i for i in (bare.find("{"), bare.find("}")) if i >= 0)
            raise p.error("'{' must end a chain header line and '}' must stand on its own line",
                          ll, off)
        stmt = p.statement(ll, block[0].text if block else None)
        if block is not None:
            if not isinstance(stmt, RuleStmt):
                raise p.error("only rules belong inside a chain block", ll, 0)
            block[3].append(stmt)
        else:
            out.append(stmt)
    if block is not None:
        raise FwcSyntaxError(f"block '{block[0].text}' is not closed with '}}'", block[4])
    return out


from fwc.policy.scan import FAST as _FAST  # noqa: E402  (scan reads this module's grammar)
