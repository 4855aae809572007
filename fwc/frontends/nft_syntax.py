"""Recursive-descent parser of nft rule text into the `nft_ast` tree (statements of one rule),
plus the token cursor shared with the command parser in `nft`."""

from __future__ import annotations

from fwc import ir
from fwc.errors import FwcSyntaxError, Unsupported
from fwc.frontends import nft_values as V
from fwc.frontends.nft_ast import (RangeV, Binop, Concat, Counted, FlagList, MapElem, MapLookup, Rel, Sel, SetLit,
                                   SetRef, Stmt, Val, VerdictS, VmapS)
from fwc.frontends.nft_lex import Token
from fwc.frontends.nft_pre import Sources

PAYLOAD_PROTOS = frozenset("""ip ip6 tcp udp udplite sctp dccp icmp icmpv6 igmp th ah esp comp
    ether vlan arp gre gretap vxlan geneve dst hbh rt frag mh srh exthdr ipcomp""".split())
# each header's fields as nft 1.0.6's scanner knows them (measured with nft -c; other words
# are its "syntax error"; icmpv6 taddr/daddr are newer nft's, which fwc reads too); `rt` is
# also the route expression.  Headers not here are unchecked.
RT_KEYS = frozenset("classid nexthop mtu ipsec".split())
PAYLOAD_FIELDS = {p: frozenset(f.split()) for p, f in {
    "ip": "checksum daddr dscp ecn frag-off hdrlength id length protocol saddr ttl version option",
    "ip6": "daddr dscp ecn flowlabel hoplimit length nexthdr saddr version",
    "tcp": "ackseq checksum doff dport flags reserved sequence sport urgptr window option",
    "udp": "checksum dport length sport", "udplite": "checksum csumcov dport sport",
    "sctp": "checksum dport sport vtag chunk", "dccp": "dport sport type",
    "icmp": "checksum code gateway id mtu sequence type",
    "icmpv6": "checksum code id max-delay mtu param-problem sequence type taddr daddr",
    "igmp": "checksum group mrt type", "th": "dport sport", "ah": "hdrlength nexthdr reserved sequence spi",
    "esp": "sequence spi", "comp": "cpi flags nexthdr", "ether": "daddr saddr type",
    "vlan": "cfi dei id pcp type", "arp": "hlen htype operation plen ptype saddr daddr",
    "dst": "hdrlength nexthdr", "hbh": "hdrlength nexthdr",
    "rt": "hdrlength nexthdr seg-left type " + " ".join(RT_KEYS),
    "frag": "frag-off id more-fragments nexthdr reserved reserved2", "srh": "flags last-entry tag sid",
    "mh": "checksum hdrlength nexthdr reserved type", "exthdr": "dst frag hbh mh rt"}.items()}
RAW_BASES = ("ll", "nh", "th", "ih")
# words after `tcp option <name>` / `ip option <name>` / `sctp chunk <name>` that name a sub-field
OPTION_FIELDS = frozenset("""kind length size value left right count tsval tsecr type flags
    pointer addr addrs seg-left last-entry tag tsn stream ssn ppid init-tag a-rwnd num-outbound-streams
    num-inbound-streams initial-tsn cum-tsn-ack num-gap-ack-blocks num-dup-tsns lowest-tsn
    seqno new-cum-tsn reserved 0 1 2 3 wscale""".split())
META_UNQUALIFIED = frozenset("""mark iif iifname iiftype oif oifname oiftype skuid skgid nftrace
    rtclassid ibriport obriport ibrname obrname pkttype cpu iifgroup oifgroup cgroup priority
    random ipsec secmark time day hour""".split())
# every key nft 1.0.6's `meta` takes
META_KEYS = META_UNQUALIFIED | frozenset("""length protocol nfproto l4proto secpath iifkind
    oifkind ibrpvid ibrvproto ibrhwaddr sdif sdifname broute""".split())
CT_DIRS = ("original", "reply")
# nft 1.0.6's ct keys, and those that take a direction (ct original|reply KEY)
CT_DIR_KEYS = frozenset("""l3proto protocol saddr daddr proto-src proto-dst bytes packets avgpkt
    zone""".split())
CT_KEYS = CT_DIR_KEYS | frozenset("""state direction status mark expiration helper event label id
    secmark count timeout expectation""".split())
BINOPS = {"&": "&", "|": "|", "^": "^", "<<": "<<", ">>": ">>", "and": "&", "or": "|",
          "xor": "^", "lshift": "<<", "rshift": ">>"}
RELOPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "eq": "==",
          "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "!": "!="}
BITMASK_SELECTORS = frozenset({"ct status", "ct state", "tcp flags", "ct event"})
VERDICT_WORDS = frozenset("accept drop continue return jump goto".split())
SELECTOR_STARTS = PAYLOAD_PROTOS | META_UNQUALIFIED | frozenset(
    "meta ct fib numgen jhash symhash socket osf ipsec rt l4proto".split())


class Cursor:
    """A position in the flat token list, with located error helpers."""

    def __init__(self, tokens: list[Token], sources: Sources):
        self.toks = tokens
        self.i = 0
        self.src = sources

    def peek(self, k: int = 0) -> Token:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else self.toks[-1]

    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t.kind in ("WORD", "PUNCT") and t.text in texts

    def accept(self, *texts: str) -> bool:
        if self.at(*texts):
            self.i += 1
            return True
        return False

    def error(self, msg: str, tok: Token = None):
        tok = tok or self.peek()
        return self.src.error(msg, tok)

    def expect(self, text: str) -> Token:
        t = self.peek()
        if not (t.kind in ("WORD", "PUNCT") and t.text == text):
            raise self.error(f"expected '{text}', got {describe(t)}")
        return self.next()

    def word(self, what: str) -> Token:
        t = self.peek()
        if t.kind not in ("WORD", "STRING"):
            raise self.error(f"expected {what}, got {describe(t)}")
        return self.next()

    def skip_nl(self) -> None:
        while self.peek().kind == "NL":
            self.i += 1

    def end_of_rule(self) -> bool:
        t = self.peek()
        return t.kind in ("NL", "EOF") or (t.kind == "PUNCT" and t.text in (";", "}"))


def describe(t: Token) -> str:
    if t.kind == "EOF":
        return "end of input"
    if t.kind == "NL":
        return "end of line"
    if t.kind == "STRING":
        return f'"{t.text}"'
    return f"'{t.text}'"


# --------------------------------------------------------------------------- rule statements


def parse_rule_body(c: Cursor) -> tuple[list, str | None]:
    """Statements up to the end of the rule; returns (statements, comment)."""
    stmts: list = []
    comment = None
    while not c.end_of_rule():
        if c.at("comment"):
            c.next()
            comment = c.word("a comment string").text
            continue
        stmts.append(parse_statement(c))
    return stmts, comment


def _anonymous_chain(c: Cursor) -> tuple:
    """`jump { tcp sport 0 drop; ... }` (an nft chain binding): its rules."""
    c.expect("{")
    rules = []
    while True:
        c.skip_nl()
        if c.accept(";"):
            continue
        if c.accept("}"):
            return tuple(rules)
        if c.peek().kind == "EOF":
            raise c.error("missing '}' at end of the anonymous chain")
        start = c.peek()
        stmts, comment = parse_rule_body(c)
        if not stmts and comment is None:
            raise c.error(f"expected a rule, got {describe(c.peek())}")
        for st in stmts:
            if isinstance(st, VerdictS) and st.body is not None:  # (nft refuses it too)
                raise FwcSyntaxError("an anonymous chain inside an anonymous chain (nft 1.0.6: "
                                     "too many levels of nesting)", st.loc, c.src.line(st.loc))
        rules.append((stmts, comment, start.loc()))


def parse_statement(c: Cursor):
    t = c.peek()
    loc = t.loc()
    if t.kind != "WORD":
        if t.is_("@"):
            sel = parse_selector(c)
            if c.at("set"):  # `@nh,144,48 set 0x1122`: a raw payload write
                c.next()
                return Stmt("set", {"lhs": sel, "value": parse_value(c, allow_map=True)}, loc)
            return _relation(c, sel)
        raise c.error(f"unexpected {describe(t)} at the start of a statement")
    w = t.text
    if w in VERDICT_WORDS:
        c.next()
        if w in ("jump", "goto"):
            if c.at("{"):
                return VerdictS(w, loc, None, _anonymous_chain(c))
            return VerdictS(w, loc, c.word("a chain name").text)
        return VerdictS(w, loc)
    handler = _STATEMENTS.get(w)
    if handler is not None:
        c.next()
        return handler(c, loc)
    if w == "ct" and c.peek(1).text == "count":
        c.next(); c.next()
        over = c.accept("over")
        return Stmt("ct count", {"count": _val(c, "a number"), "over": over}, loc)
    if w == "set" and c.peek(1).text in ("add", "update", "delete") and c.peek(1).kind == "WORD":
        # the old form `set update ip saddr [timeout T] @s` (nft lists `update @s { ip saddr }`)
        c.next()
        op = c.next().text
        key = parse_value(c, in_set=True)
        timeout = c.word("a timeout").text if c.accept("timeout") else None
        c.expect("@")
        name = c.word("a set name").text
        return Stmt("setupdate", {"op": op, "set": name, "key": key, "stmts": [],
                                  "timeout": timeout}, loc)
    if w in ("add", "update", "delete") and c.peek(1).is_("@"):
        c.next(); c.next()
        name = c.word("a set name").text
        c.expect("{")
        key = parse_value(c, in_set=True)
        extra = []
        timeout = c.word("a timeout").text if c.accept("timeout") else None
        if c.accept(":"):
            extra.append(Stmt("map value", {"value": parse_value(c, in_set=True)}, c.peek().loc()))
        while not c.at("}"):
            extra.append(parse_statement(c))
        c.expect("}")
        return Stmt("setupdate", {"op": w, "set": name, "key": key, "stmts": extra,
                                  "timeout": timeout}, loc)
    if w in SELECTOR_STARTS or w in PAYLOAD_PROTOS:
        sel = parse_selector(c)
        if c.at("set"):
            c.next()
            return Stmt("set", {"lhs": sel, "value": parse_value(c, allow_map=True)}, loc)
        return _relation(c, sel)
    raise c.error(f"unknown statement or expression '{w}'")


def _relation(c: Cursor, lhs):
    lhs = _binops(c, lhs)
    if c.at("."):
        parts = [lhs]
        while c.accept("."):
            parts.append(_binops(c, parse_selector(c)))
        lhs = Concat(tuple(parts), lhs.loc)
    if c.at("vmap"):
        c.next()
        return VmapS(lhs, _set_or_ref(c), lhs.loc)
    op = ""
    bang = False
    if c.at(*RELOPS) and c.peek().kind in ("PUNCT", "WORD"):
        bang = c.peek().text == "!"
        op = RELOPS[c.next().text]
    if c.end_of_rule():
        raise c.error(f"expected a value after '{lhs.text if isinstance(lhs, Sel) else 'expression'}'")
    rhs = parse_value(c)
    if isinstance(rhs, FlagList) and rhs.comma and isinstance(lhs, Sel) and \
            lhs.text not in BITMASK_SELECTORS:  # (nft refuses `tcp dport 22,23`)
        raise c.error(f"a comma list is for bitmask fields; write a set: "
                      f"'{lhs.text} {{ ... }}'")
    if bang and isinstance(lhs, Binop):  # (nft: cannot combine negation with binary expression)
        raise c.error("'!' cannot negate a binary expression (`tcp flags & (syn | ack) ! syn`): "
                      "write '!=' or the bit test without the mask")
    if bang and isinstance(lhs, Sel) and lhs.text not in BITMASK_SELECTORS and \
            lhs.text != "ct label":  # (nft refuses `ip saddr ! 10.0.0.1`)
        raise c.error(f"'!' negates a bit test ({', '.join(sorted(BITMASK_SELECTORS))}); "
                      f"write '{lhs.text} != ...'")
    if bang and isinstance(lhs, Sel) and lhs.text in BITMASK_SELECTORS and \
            not isinstance(rhs, (FlagList, SetLit)):
        # on a bitmask, `! x` is the bit test "x not set" (nft: & x == 0), unlike `!= x`,
        # which compares the whole value: keep the flag form
        rhs = FlagList((rhs,), rhs.loc if hasattr(rhs, "loc") else lhs.loc)
    elif op == "!=" and not bang and isinstance(rhs, FlagList):
        # `ct state != established,related` is `cmp neq 0x6` in nft 1.0.6: never a bit test
        rhs = FlagList(rhs.items, rhs.loc, exact=True)
    if c.at("/") and isinstance(lhs, Sel):
        c.next()  # `VALUE / MASK` means `LHS & MASK == VALUE`
        mask = parse_value(c)
        return Rel(Binop(lhs, "&", mask, lhs.loc), "!=" if op == "!=" else "==", rhs, lhs.loc)
    return Rel(lhs, op, rhs, lhs.loc)


def _binops(c: Cursor, lhs):
    while c.at(*BINOPS) and not (c.peek().text in ("&", "|") and False):
        op = BINOPS[c.next().text]
        rhs = _basic(c)
        lhs = Binop(lhs, op, rhs, lhs.loc)
    return lhs


def _set_or_ref(c: Cursor):
    if c.at("@"):
        t = c.next()
        return SetRef(c.word("a set name").text, t.loc())
    if c.at("{"):
        return parse_set(c)
    raise c.error("expected '{' or '@set'")


def split_token(c: Cursor, parts: list[str]) -> None:
    """Replace the next token by `parts` (nft's scanner reads `25:accept` as one word)."""
    t = c.peek()
    new, col = [], t.col
    for p in parts:
        kind = "PUNCT" if p == ":" else "WORD"
        new.append(Token(kind, p, t.line, col, t.file))
        col += len(p)
    c.toks[c.i:c.i + 1] = new


def _split_map_key(c: Cursor) -> None:
    """`25:accept`, `aaaa:::accept` (an IPv6 key ending in '::'), `::dddd:` before a verdict."""
    t = c.peek()
    if t.kind != "WORD" or ":" not in t.text or t.text.startswith("["):
        return
    head, _, tail = t.text.rpartition(":")
    if tail in VERDICT_WORDS and head:
        split_token(c, [head, ":", tail])
    elif tail == "" and head and not head.endswith(":") and c.peek(1).kind == "WORD" \
            and c.peek(1).text in VERDICT_WORDS:
        split_token(c, [head, ":"])


def parse_set(c: Cursor) -> SetLit:
    start = c.expect("{")
    elems, timeouts = [], []
    c.skip_nl()
    while not c.at("}"):
        _split_map_key(c)
        key = parse_value(c, in_set=True)
        counter, timed = _element_options(c)
        if counter is not None:
            key = Counted(key, counter[0], counter[1], key.loc)
        timeouts.append(timed)
        if c.accept(":"):
            data = _verdict_or_value(c)
            elems.append(MapElem(key, data, key.loc))
            if _element_options(c) != (None, ir.NO_TIMEOUT):
                raise c.error("per-element options go before ':' (`KEY counter : VALUE`)")
        else:
            elems.append(key)
        c.skip_nl()
        if not c.accept(","):
            c.skip_nl()
            if not c.at("}"):
                raise c.error(f"expected ',' or '}}' in set, got {describe(c.peek())}")
        c.skip_nl()
    c.expect("}")
    return SetLit(tuple(elems), start.loc(), ir.compact_timeouts(timeouts))


def _element_options(c: Cursor):
    """(counter, (timeout, expires)) of a set element: a per-element `counter [packets N bytes
    M]` as (packets, bytes) or None; its `timeout T` and `expires E` texts (an element of a set
    with timeouts leaves it when they run out) or None; a comment carries no meaning."""
    counter = None
    timed = {"timeout": None, "expires": None}
    while c.at("timeout", "expires", "comment", "counter"):
        kw = c.next()
        if kw.text == "counter":
            if counter is not None:
                raise c.error("two counters on one set element", kw)
            counts = {"packets": 0, "bytes": 0}
            while c.at("packets", "bytes"):
                w = c.next().text
                n = c.word(f"a number after {w}")
                if not n.text.isdigit():
                    raise c.error(f"expected a number after {w}, got {n.text!r}", n)
                counts[w] = int(n.text)
            counter = (counts["packets"], counts["bytes"])
            continue
        value = c.word(f"a value after {kw.text}")
        if kw.text in timed:
            timed[kw.text] = duration(c, value, kw.text)
    return counter, (timed["timeout"], timed["expires"])


def duration(c: Cursor, tok: Token, what: str) -> str:
    """A time word as nft lists it (`90s` -> `1m30s`), or a located error."""
    from fwc.frontends.nft_values import canonical_duration
    got = canonical_duration(tok.text)
    if got is None:
        raise c.error(f"invalid {what} {tok.text!r} (a time such as 90s or 1m30s)", tok)
    return got


def _verdict_or_value(c: Cursor):
    t = c.peek()
    if t.kind == "WORD" and t.text in VERDICT_WORDS:
        c.next()
        if t.text in ("jump", "goto"):
            return VerdictS(t.text, t.loc(), c.word("a chain name").text)
        return VerdictS(t.text, t.loc())
    return parse_value(c, in_set=True)


def parse_value(c: Cursor, in_set: bool = False, allow_map: bool = False):
    """A right-hand side: set, @ref, or concatenation of basic values (comma flag lists outside
    sets), optionally `map {...}`."""
    if c.at("{"):
        return parse_set(c)
    if c.at("@"):
        t = c.next()
        return SetRef(c.word("a set name").text, t.loc())
    first = c.peek()
    parts = [_flaglist(c, in_set)]
    while c.at("."):
        c.next()
        parts.append(_flaglist(c, in_set))
    if c.at("-") and c.peek(1).kind in ("WORD", "STRING") and not in_set_key_only(c):
        c.next()  # `8888 - 8999` written with spaces
        parts[-1] = RangeV(parts[-1], _flaglist(c, in_set), parts[-1].loc)
    v = parts[0] if len(parts) == 1 else Concat(tuple(parts), first.loc())
    if allow_map and c.at("map"):
        c.next()
        return MapLookup(v, _set_or_ref(c), first.loc())
    return v


def in_set_key_only(c: Cursor) -> bool:
    return False


def _flaglist(c: Cursor, in_set: bool):
    first = c.peek()
    items = [_basic_binop(c)]
    sep = "|" if in_set else None
    while c.at("|") or (not in_set and c.at(",")):
        if sep is None:
            sep = c.peek().text
        if c.peek().text != sep:
            break
        c.next()
        items.append(_basic_binop(c))
    return items[0] if len(items) == 1 else FlagList(tuple(items), first.loc(),
                                                     comma=sep == ",")


_PREC = {"<<": 4, ">>": 4, "&": 3, "^": 2, "|": 1}
_VALUE_OPS = ("&", "^", "<<", ">>", "and", "or", "xor", "lshift", "rshift")


def _basic_binop(c: Cursor, min_prec: int = 1):
    """Values can be expressions too (`meta mark set ip dscp & 0x0f << 1`), with C precedence:
    shifts, then and, xor, or.  A bare `|` stays the flag-list separator (see _flaglist)."""
    v = _basic(c)
    while isinstance(v, (Sel, Binop)) or c.at("<<", ">>", "lshift", "rshift"):
        if not c.at(*_VALUE_OPS):
            break
        op = BINOPS[c.peek().text]
        if _PREC[op] < min_prec:
            break
        c.next()
        v = Binop(v, op, _basic_binop_rhs(c, _PREC[op] + 1), v.loc)
    return v


def _basic_binop_rhs(c: Cursor, min_prec: int):
    v = _basic(c)
    while c.at(*_VALUE_OPS) and _PREC[BINOPS[c.peek().text]] >= min_prec:
        op = BINOPS[c.next().text]
        v = Binop(v, op, _basic_binop_rhs(c, _PREC[op] + 1), v.loc)
    return v


def _basic(c: Cursor):
    t = c.peek()
    if t.is_("("):
        c.next()
        v = parse_value(c)
        c.expect(")")
        return v
    if t.is_("-") and c.peek(1).kind == "WORD":
        c.next()
        w = c.next()
        return Val("-" + w.text, t.loc())
    if t.kind == "STRING":
        c.next()
        return Val(t.text, t.loc(), quoted=True)
    if t.kind == "WORD":
        # a field used as a value (`ct mark set meta mark`, `snat to ip saddr map {...}`)
        if t.text in ("meta", "ct", "numgen", "jhash", "symhash", "fib", "osf", "socket") or (
                t.text == "mark" and c.peek(1).text in BINOPS) or (
                t.text in PAYLOAD_PROTOS and c.peek(1).kind == "WORD"
                and c.peek(1).text not in _stop_words() and c.peek(1).text != ":"):
            # (`tcp : goto x` in a map is the value tcp, not a field of tcp)
            return parse_selector(c)
        c.next()
        return Val(t.text, t.loc())
    if t.is_("*"):
        c.next()
        return Val("*", t.loc())
    if t.is_("@") and c.peek(1).kind == "WORD" and c.peek(1).text in ("ll", "nh", "th", "ih"):
        return parse_selector(c)
    raise c.error(f"expected a value, got {describe(t)}")


_STOP: set = set()


def _stop_words() -> set:
    """Words that start a new statement: after `meta l4proto tcp` they show `tcp` was a value."""
    if not _STOP:
        _STOP.update(VERDICT_WORDS, _STATEMENTS, SELECTOR_STARTS,
                     ("comment", "add", "update", "delete", "set", "map", "vmap", "ct", "notrack"))
    return _STOP


# --------------------------------------------------------------------------- selectors


def parse_selector(c: Cursor) -> Sel:
    t = c.peek()
    loc = t.loc()
    if t.is_("@"):
        c.next()
        base = c.word("a payload base (ll nh th ih)")
        if base.text not in RAW_BASES:
            raise c.error(f"unknown raw payload base '{base.text}' (ll, nh, th or ih)", base)
        parts = [base.text]
        for _ in range(2):
            c.expect(",")
            n = c.word("a number")
            if V.parse_int(n.text) is None:
                raise c.error(f"expected a number, got '{n.text}'", n)
            parts.append(n.text)
        off, bits = V.parse_int(parts[1]), V.parse_int(parts[2])
        if not 0 < bits <= 128 - off % 8:
            # nft 1.0.6 aborts (an assertion) on a field outside one 128-bit register
            raise c.error(f"raw payload of {bits} bits at offset {off}: nft takes 1 to "
                          f"{128 - off % 8} bits there", n)
        return Sel("@" + ",".join(parts), loc)
    w = c.next().text
    if w == "ipsec" and c.at("in", "out"):
        words = ["ipsec", c.next().text]
        if c.accept("spnum"):
            tok = c.word("a number")
            n = tok.text
            if V.parse_int(n) is None or not 0 <= V.parse_int(n) < 6:
                # (nft_xfrm: spnum below XFRM_MAX_DEPTH, else "Numerical result out of range")
                raise c.error(f"ipsec spnum {n}: a number from 0 to 5 (the kernel keeps 6 "
                              "policies per packet)", tok)
            if n not in ("0", "0x0"):  # spnum 0 is the default
                words += ["spnum", n]
        fam = c.next().text if c.at("ip", "ip6") else None
        keys = ("saddr", "daddr") if fam else ("reqid", "spi")
        key = c.word("an ipsec key (reqid spi, or ip|ip6 saddr|daddr)")
        if key.text not in keys:
            raise c.error(f"ipsec {' '.join(words[1:] + [fam] if fam else words[1:])} takes "
                          f"{' or '.join(keys)}, not '{key.text}'", key)
        words += [fam, key.text] if fam else [key.text]
        return Sel(" ".join(words), loc)
    if w in META_UNQUALIFIED:
        return Sel(f"meta {w}", loc)
    if w == "l4proto":
        return Sel("meta l4proto", loc)
    if w == "meta":
        key = c.word("a meta key")
        if key.text not in META_KEYS:
            raise c.error(f"unknown meta key '{key.text}' (nft knows {', '.join(sorted(META_KEYS))})",
                          key)
        return Sel(f"meta {key.text}", loc)
    if w == "ct":
        words = ["ct"]
        if c.at(*CT_DIRS):
            words.append(c.next().text)
        fam = None
        if c.at("ip", "ip6"):
            if len(words) == 1:
                raise c.error("a family word in a ct expression needs a direction first (ct "
                              f"original {c.peek().text} saddr)", c.peek())
            fam = c.next().text  # `ct original ip saddr`: `ct original saddr` of one family
        key = c.word("a ct key")
        keys = CT_DIR_KEYS if len(words) > 1 else CT_KEYS
        if key.text not in keys:
            raise c.error(f"unknown ct key '{key.text}'{' with a direction' if len(words) > 1 else ''}"
                          f" (nft knows {', '.join(sorted(keys))})", key)
        words.append(key.text)
        return Sel(" ".join(words), loc, fam)
    if w == "fib":
        first = c.word("a fib flag")
        flags = [first.text]
        while c.accept("."):
            flags.append(c.word("a fib flag").text)
        bad = [f for f in flags if f not in ("saddr", "daddr", "mark", "iif", "oif")]
        why = (f"unknown fib flag '{bad[0]}'" if bad else
               "saddr and daddr are mutually exclusive" if {"saddr", "daddr"} <= set(flags) else
               "iif and oif are mutually exclusive" if {"iif", "oif"} <= set(flags) else
               "need either saddr or daddr" if not {"saddr", "daddr"} & set(flags) else None)
        if why:
            raise c.error(f"fib: {why}", first)
        res = c.word("a fib result (oif oifname type)")
        if res.text not in ("oif", "oifname", "type", "check"):
            raise c.error(f"unknown fib result '{res.text}' (oif, oifname, type or check)", res)
        return Sel(f"fib {' . '.join(flags)} {res.text}", loc)
    if w == "numgen":
        mode = c.word("inc or random").text
        c.expect("mod")
        mod_tok = c.word("a modulus")
        mod = mod_tok.text
        if V.parse_int(mod) in (None, 0) or V.parse_int(mod) >= 2**32:
            raise c.error(f"numgen modulus must be a number from 1 to 4294967295, not '{mod}'",
                          mod_tok)
        text = f"numgen {mode} mod {mod}"
        if c.accept("offset"):
            text += f" offset {c.word('an offset').text}"
        return Sel(text, loc)
    if w in ("jhash", "symhash"):
        text = w
        if w == "jhash":
            parts = [parse_selector(c).text]
            while c.accept("."):
                parts.append(parse_selector(c).text)
            text += " " + " . ".join(parts)
        c.expect("mod")
        mod_tok = c.word("a modulus")
        if V.parse_int(mod_tok.text) in (None, 0):
            raise c.error(f"{w} modulus must be a number above 0, not '{mod_tok.text}'", mod_tok)
        text += f" mod {mod_tok.text}"
        for opt in ("seed", "offset"):
            if c.accept(opt):
                n = c.word("a number")
                v = V.parse_int(n.text)
                if v is None:
                    raise c.error(f"expected a number after {opt}, got '{n.text}'", n)
                text += f" {opt} {v:#x}" if opt == "seed" else f" {opt} {v}"
        return Sel(text, loc)
    if w == "socket":
        key = c.word("a socket key").text
        text = f"socket {key}"
        if c.accept("level"):
            text += f" level {c.word('a level').text}"
        return Sel(text, loc)
    if w == "osf":
        words = ["osf"]
        if c.accept("ttl"):
            opt = c.word("loose or skip")
            if opt.text not in ("loose", "skip"):
                raise c.error(f"invalid osf ttl option '{opt.text}' (loose or skip)", opt)
            words += ["ttl", opt.text]
        words.append(c.word("name or version").text)
        return Sel(" ".join(words), loc)
    if w == "ipsec":
        words = ["ipsec", c.word("in or out").text]
        if c.accept("spnum"):
            words += ["spnum", c.word("a number").text]
        if c.at("ip", "ip6"):
            words.append(c.next().text)
        words.append(c.word("an ipsec key").text)
        return Sel(" ".join(words), loc)
    if w in PAYLOAD_PROTOS:
        return Sel(_payload_words(c, w), loc)
    raise c.error(f"unknown expression '{w}'")


def _payload_words(c: Cursor, proto: str) -> str:
    words = [proto]
    if c.at("@"):  # tcp option @kind,off,len
        raise Unsupported("raw option offsets ('@kind,offset,len') have no IR equivalent",
                          c.peek().loc(), c.src.line(c.peek().loc()))
    f = c.word(f"a {proto} header field")
    words.append(f.text)
    if f.text in PAYLOAD_PROTOS and f.kind == "WORD" and proto in (
            "vxlan", "geneve", "gretap", "gre", "rt", "exthdr") and c.peek().kind == "WORD" \
            and proto != "exthdr":
        if proto == "rt" and f.text in ("ip", "ip6"):  # `rt ip6 nexthop`
            if not c.accept("nexthop"):
                raise c.error(f"expected 'nexthop' after 'rt {f.text}'")
            return f"rt {f.text} nexthop"
        return " ".join([proto, _payload_words(c, f.text)])
    fields = PAYLOAD_FIELDS.get(proto)
    if fields is not None and f.text.split("[")[0] not in fields:  # (`srh sid[1]`)
        raise c.error(f"unknown {proto} field '{f.text}' (nft knows {', '.join(sorted(fields))})", f)
    if proto == "arp" and f.text in ("saddr", "daddr") and c.peek().kind == "WORD" and \
            c.peek().text in ("ip", "ether"):  # `arp saddr ip 1.2.3.4`, `arp daddr ether ...`
        words.append(c.next().text)
        return " ".join(words)
    if f.text in ("option", "chunk") and proto in ("tcp", "ip", "sctp", "dccp"):
        if c.at("@"):  # `tcp option @254,16,16`: nft takes a raw option field
            raise Unsupported(f"raw {proto} option fields ('{proto} option @kind,offset,len') "
                              "have no IR equivalent", c.peek().loc(), c.src.line(c.peek().loc()))
        name = c.word("an option name")
        if proto == "tcp" and f.text == "option":
            name = Token(name.kind, _TCP_OPTION_ALIASES.get(name.text, name.text), name.line,
                         name.col, name.file)
            _check_tcp_option(c, name)
        words.append(name.text)
        if c.peek().kind == "WORD" and c.peek().text in OPTION_FIELDS and \
                not (proto == "tcp" and c.peek().text.isdigit()):  # (`tcp option X 1`: a value)
            words.append(c.next().text)
    return " ".join(words)


# nft 1.0.6's tcp options and the fields each has (measured with nft -c); a number 0-255 is
# an option with a length only
_TCP_OPTION_FIELDS = {"eol": (), "nop": (), "maxseg": ("length", "size"),
                      "window": ("length", "count"), "sack-perm": ("length",),
                      "timestamp": ("length", "tsval", "tsecr"), "fastopen": ("length",),
                      "md5sig": ("length",), "mptcp": ("length", "subtype"),
                      **{s: ("length", "left", "right") for s in
                         ("sack", "sack0", "sack1", "sack2", "sack3")}}


# other names nft 1.0.6 takes for tcp options (it lists them by the names above)
_TCP_OPTION_ALIASES = {"mss": "maxseg", "sack-permitted": "sack-perm"}


def _check_tcp_option(c: Cursor, name) -> None:
    n = V.parse_int(name.text)
    if n is None and name.text not in _TCP_OPTION_FIELDS:
        raise c.error(f"unknown tcp option '{name.text}' (nft knows "
                      f"{', '.join(sorted(_TCP_OPTION_FIELDS))}, or a number)", name)
    if n is not None and not 0 <= n <= 255:
        raise c.error(f"tcp option {name.text}: value too large (0 to 255)", name)
    fields = ("length",) if n is not None else _TCP_OPTION_FIELDS[name.text]
    nxt = c.peek()
    if nxt.kind == "WORD" and (nxt.text in OPTION_FIELDS or nxt.text in _TCP_OPTION_FIELDS) \
            and nxt.text not in fields and not nxt.text.isdigit():
        raise c.error(f"tcp option {name.text} has no field '{nxt.text}'"
                      f"{' (it has ' + ', '.join(fields) + ')' if fields else ''}", nxt)


# --------------------------------------------------------------------------- other statements


def _val(c: Cursor, what: str) -> Val:
    t = c.word(what)
    return Val(t.text, t.loc(), t.kind == "STRING")


def _opt_value(c: Cursor):
    return parse_value(c)


def _st_counter(c: Cursor, loc):
    args = {}
    if c.accept("name"):
        args["name"] = parse_value(c, allow_map=True)
        return Stmt("counter", args, loc)
    while c.at("packets", "bytes"):
        k = c.next().text
        args[k] = _val(c, "a number")
    return Stmt("counter", args, loc)


def _st_log(c: Cursor, loc):
    args: dict = {}
    while c.at("prefix", "level", "group", "snaplen", "queue-threshold", "flags"):
        k = c.next().text
        if k == "flags":
            flags = [c.word("a log flag").text]
            while c.accept(","):
                flags.append(c.word("a log flag").text)
            if flags[-1] in ("tcp", "ip") and c.at("options", "sequence"):
                pass
            args.setdefault("flags", []).extend(_log_flag_words(c, flags))
        else:
            args[k] = _val(c, f"a value after {k}")
    return Stmt("log", args, loc)


def _log_flag_words(c: Cursor, first: list[str]) -> list[str]:
    # `flags tcp sequence,options`, `flags ip options`, `flags skuid`, `flags ether`, `flags all`
    out = []
    for f in first:
        if f in ("tcp", "ip"):
            subs = [c.word("a log flag").text]
            while c.accept(","):
                subs.append(c.word("a log flag").text)
            out += [f"{f} {s}" for s in subs]
        else:
            out.append(f)
    return out


def _st_limit(c: Cursor, loc):
    if c.accept("name"):
        return Stmt("limit", {"name": parse_value(c, allow_map=True)}, loc)
    c.expect("rate")
    over = False
    if c.accept("over"):
        over = True
    elif c.accept("until"):
        pass
    rate = _val(c, "a rate")
    args = {"rate": rate, "over": over}
    if c.peek().kind == "WORD" and not c.peek().text.startswith(("burst",)) and "/" in c.peek().text:
        args["unit"] = _val(c, "a rate unit")  # `1 mbytes/second`
    elif c.at("bytes", "kbytes", "mbytes"):  # `1 mbytes / second`
        args["unit"] = _val(c, "a rate unit")
        if c.at("/"):
            c.next()
            args["per"] = _val(c, "a time unit")
    elif c.at("/"):
        c.next()
        args["per"] = _val(c, "a time unit")
    if c.accept("burst"):
        args["burst"] = _val(c, "a burst")
        if c.at("packets", "bytes", "kbytes", "mbytes"):
            args["burst_unit"] = c.next().text
    return Stmt("limit", args, loc)


def _st_reject(c: Cursor, loc):
    args = {}
    if c.accept("with"):
        kind = c.word("icmp, icmpv6, icmpx or tcp").text
        args["family"] = kind
        if kind == "tcp":
            c.expect("reset")
            args["type"] = "tcp-reset"
        else:
            c.accept("type")
            args["type"] = _val(c, "an icmp reject type").text
    return Stmt("reject", args, loc)


def _st_queue(c: Cursor, loc):
    args: dict = {"flags": []}
    while True:
        if c.accept("num"):
            args["num"] = _val(c, "a queue number")
        elif c.accept("to"):
            args["num"] = _val(c, "a queue number")
        elif c.accept("flags") or c.at("bypass", "fanout"):
            args["flags"].append(c.word("a queue flag").text)
            while c.accept(","):
                args["flags"].append(c.word("a queue flag").text)
        else:
            break
    return Stmt("queue", args, loc)


def _st_nat(kind):
    def parse(c: Cursor, loc):
        args: dict = {"flags": []}
        if c.at("ip", "ip6"):
            args["family"] = c.next().text
        if c.at("addr") and c.peek(1).text == ".":  # `dnat ip addr . port to KEY map {...}`:
            c.next()                                # the map's values say it again
            c.next()
            if c.word("'port'").text != "port":
                raise c.error("expected 'addr . port'", c.peek())
        if c.accept("prefix"):
            args["prefix"] = True
        if c.at("to") and c.peek(1).kind == "WORD" and c.peek(1).text[1:] in SELECTOR_STARTS \
                and c.peek(1).text.startswith(":"):
            c.next()  # `redirect to :tcp dport map { 22 : 8000 }`
            split_token(c, [":", c.peek().text[1:]])
            c.next()
            args["ports"] = parse_value(c, allow_map=True)
        elif c.at("to") and c.peek(1).kind == "WORD" and c.peek(1).text.startswith(":"):
            c.next()
            t = c.next()
            args["ports"] = Val(t.text[1:], t.loc())
        elif c.accept("to") or (kind in ("snat", "dnat") and not c.end_of_rule()
                              and not c.at("random", "persistent", "fully-random")):
            if c.at(":"):  # `redirect to :8080` / `masquerade to :1024-2048`
                c.next()
                args["ports"] = _val(c, "a port")
            else:
                args["to"] = parse_value(c, allow_map=True)
                if c.at(":"):
                    c.next()
                    args["ports"] = parse_value(c)
        if c.accept("prefix"):
            args["prefix"] = True
        while c.at("random", "persistent", "fully-random", "netmap"):
            args["flags"].append(c.next().text)
            c.accept(",")
        return Stmt(kind, args, loc)
    return parse


def _st_simple(kind):
    def parse(c: Cursor, loc):
        return Stmt(kind, {}, loc)
    return parse


def _st_quota(c: Cursor, loc):
    if c.accept("name"):
        return Stmt("quota", {"name": parse_value(c, allow_map=True)}, loc)
    over = c.accept("over")
    c.accept("until")
    amount = _val(c, "a quota amount")
    unit = c.word("a unit").text if c.at("bytes", "kbytes", "mbytes", "gbytes") else "bytes"
    args = {"over": over, "amount": amount, "unit": unit}
    if c.accept("used"):
        args["used"] = _val(c, "a number")
        if c.at("bytes", "kbytes", "mbytes", "gbytes"):
            args["used_unit"] = c.word("a unit").text
    return Stmt("quota", args, loc)


def _st_unsupported(kind):
    def parse(c: Cursor, loc):
        raise Unsupported(f"nft statement '{kind}' has no IR equivalent", loc, c.src.line(loc))
    return parse


_STATEMENTS = {
    "counter": _st_counter,
    "log": _st_log,
    "limit": _st_limit,
    "reject": _st_reject,
    "queue": _st_queue,
    "snat": _st_nat("snat"),
    "dnat": _st_nat("dnat"),
    "masquerade": _st_nat("masquerade"),
    "redirect": _st_nat("redirect"),
    "notrack": _st_simple("notrack"),
    "quota": _st_quota,
    "mark": None,  # placeholder replaced below (unqualified `mark set`)
}
del _STATEMENTS["mark"]
def _st_dup(c: Cursor, loc):
    c.expect("to")
    args = {"to": parse_value(c, allow_map=True)}
    if c.accept("device"):
        args["device"] = _val(c, "a device name")
    if not isinstance(args["to"], Val):
        raise Unsupported("dup to a map", loc, c.src.line(loc))
    return Stmt("dup", args, loc)


_STATEMENTS["dup"] = _st_dup


def _st_meter(c: Cursor, loc):
    """`meter NAME [size N] { KEY [timeout T] STMT... }`: nft's dynamic set NAME (flags
    dynamic, and timeout when the key has one; size N or 65535) updated with KEY, each element
    running STMT: the same as `update @NAME { KEY [timeout T] STMT }` on such a set (nft_build
    declares it)."""
    name = c.word("a meter name").text
    size = None
    if c.accept("size"):
        size = _val(c, "a size")
    c.expect("{")
    key = parse_value(c, in_set=True)
    timeout = c.word("a timeout").text if c.accept("timeout") else None
    extra = []
    while not c.at("}"):
        extra.append(parse_statement(c))
    c.expect("}")
    # (nft makes it a dynset `update` when the key has a timeout, else an `add`: the same
    # without a timeout, and what `ct count` needs)
    return Stmt("setupdate", {"op": "update" if timeout else "add", "set": name, "key": key,
                              "stmts": extra,
                              "timeout": timeout, "meter": size if size is not None else
                              Val("65535", loc)}, loc)


_STATEMENTS["meter"] = _st_meter
for _w in ("fwd", "flow", "xt", "last", "secmark", "tunnel"):  # tunnel: nft >= 1.1
    _STATEMENTS[_w] = _st_unsupported(_w)


def _st_tproxy(c: Cursor, loc):
    args: dict = {}
    if c.at("ip", "ip6"):
        args["family"] = c.next().text
    c.expect("to")
    if c.at(":"):
        c.next()
        args["to"] = Val(":" + c.word("a port").text, loc)
    else:
        args["to"] = _val(c, "an address or :port")
    if c.at(":", "map", "mod") or args["to"].text.endswith((":symhash", ":jhash", ":numgen")):
        raise Unsupported("tproxy to a computed port or map", c.peek().loc(), c.src.line(loc))
    return Stmt("tproxy", args, loc)


def _st_synproxy(c: Cursor, loc):
    if c.at("name"):
        raise Unsupported("named synproxy objects ('synproxy name')", loc, c.src.line(loc))
    args: dict = {}
    while c.at("mss", "wscale", "timestamp", "sack-perm"):
        k = c.next().text
        args[k] = _val(c, f"a value after {k}") if k in ("mss", "wscale") else True
    return Stmt("synproxy", args, loc)


_STATEMENTS["tproxy"] = _st_tproxy
_STATEMENTS["synproxy"] = _st_synproxy
