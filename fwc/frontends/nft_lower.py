"""nft syntax tree (from text or JSON) -> IR rule.  The meaning of each nft form is decided here,
once, for both front ends."""

from __future__ import annotations

import re

import attrs

from fwc import ir
from fwc.errors import FwcSyntaxError, Unsupported
from fwc.frontends import nft_values as V
from fwc.frontends.nft_syntax import META_UNQUALIFIED, PAYLOAD_PROTOS
from fwc.frontends.nft_ast import (Binop, Concat, Counted, FlagList, MapElem, MapLookup, PrefixV,
                                   RangeV, Rel, Sel, SetLit,
                                   SetRef, Stmt, Val, VerdictS, VmapS)

ADDR4, ADDR6, ADDR = V.dec_addr(4), V.dec_addr(6), V.dec_addr(None)
_PORT_PROTOS = ("tcp", "udp", "udplite", "sctp", "dccp")


def in_table(family: str) -> str:
    """'in an inet table', 'in a bridge table' (for messages)."""
    return f"in {'an' if family[0] in 'aeiou' else 'a'} {family} table"


@attrs.define
class Ctx:
    family: str  # ip ip6 inet
    sets: dict  # name -> ir.NamedSet
    source_line: object = None  # callable(loc) -> str
    helpers: dict = attrs.Factory(dict)  # ct helper objects: name -> (helper type, l4 proto)
    connlimits: dict = attrs.Factory(dict)  # set name -> locations of its `ct count` updates
    counters: dict = attrs.Factory(dict)  # named counter objects of the table
    limits: dict = attrs.Factory(dict)  # named limit objects of the table: name -> ir.Limit

    def unsupported(self, msg: str, loc) -> Unsupported:
        return Unsupported(msg, loc, self.source_line(loc) if self.source_line else None)

    def syntax(self, msg: str, loc) -> FwcSyntaxError:
        return FwcSyntaxError(msg, loc, self.source_line(loc) if self.source_line else None)


def decoder_for(text: str) -> V.Decoder:
    return _catch_all(_decoder_for(text))


def _catch_all(dec):
    def decode(v):
        if isinstance(v, Val) and v.text == "*" and not v.quoted:
            raise Unsupported("catch-all set element '*'", v.loc)
        return dec(v)
    return decode


def _decoder_for(text: str) -> V.Decoder:
    if text in ("ip saddr", "ip daddr", "ct original ip saddr", "arp saddr ip", "arp daddr ip"):
        return ADDR4
    if text in ("ip6 saddr", "ip6 daddr", "rt ip6 nexthop"):
        return ADDR6
    if text.startswith("ct ") and text.endswith(("saddr", "daddr")):
        return ADDR
    if text.endswith((" sport", " dport")) or text.endswith(("proto-src", "proto-dst")):
        return V.dec_port
    if text in ("meta l4proto", "ip protocol", "ip6 nexthdr", "ct protocol", "ct original protocol",
                "ct reply protocol") or text.endswith(" nexthdr"):
        return V.dec_proto
    if text in ("meta iifname", "meta oifname", "meta ibrname", "meta obrname", "meta iif",
                "meta oif", "fib saddr oifname", "fib daddr oifname"):
        return V.dec_ifname
    if text in ("ether saddr", "ether daddr", "arp saddr ether", "arp daddr ether"):
        return V.dec_mac
    if text == "ct state":
        return V.dec_symbol(V.CT_STATES, "a ct state")
    if text == "ct status":
        return V.dec_symbol(V.CT_STATUS, "a ct status")
    if text == "ct direction":
        return V.dec_symbol(("original", "reply"), "a ct direction")
    if text == "tcp flags":
        sym = V.dec_symbol(V.TCP_FLAG_BITS, "a tcp flag")
        return lambda v: sym(v) if not (isinstance(v, Val) and V.parse_int(v.text) is not None) \
            else V.dec_int(v, None, 8)
    if text == "icmp type":
        return lambda v: V.dec_int(v, V.ICMP_TYPES, 8)
    if text == "icmpv6 type":
        return lambda v: V.dec_int(v, V.ICMPV6_TYPES, 8)
    if text == "icmp code":
        return lambda v: V.dec_int(v, V.ICMP_CODES, 8)
    if text == "icmpv6 code":
        return lambda v: V.dec_int(v, V.ICMPV6_CODES, 8)
    if text.startswith("exthdr ") and len(text.split()) == 2:
        return lambda v: V.dec_int(v, {"exists": 1, "missing": 0}, 1)
    if text in ("ip ecn", "ip6 ecn"):
        return lambda v: V.dec_int(v, {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3}, 2)
    if text in ("ip dscp", "ip6 dscp"):
        # `1/6`: a prefix as long as the 6-bit field is the value itself
        return lambda v: V.dec_int(Val(v.text[:-2], v.loc) if isinstance(v, Val) and
                                   v.text.endswith("/6") else v, V.DSCP, 6)
    if text in ("meta mark", "ct mark"):
        # `0xffffff00/24` is a masked mark, decoded whole by _mark
        return lambda v: (V.dec_int(Val(v.text.partition("/")[0], v.loc), None, 32)
                          if isinstance(v, Val) and "/" in v.text else V.dec_int(v, None, 32))
    if text in ("meta skuid", "meta skgid"):
        return _dec_ugid(text)
    if text.startswith("fib ") and text.endswith(" type"):
        return V.dec_symbol(V.FIB_TYPES, "an address type")
    if text == "ct expiration":
        def expiration(v):  # (nft reads milliseconds into 32 bits)
            got = V.dec_time_ms(v)
            if (got.hi if isinstance(got, ir.Range) else got) > 0xFFFFFFFF:
                raise V.err(v, f"ct expiration {getattr(v, 'text', '')} exceeds valid range "
                               "0-4294967295 ms")
            return got
        return expiration
    if text == "meta day":
        return _dec_day
    if text in _SYMBOLS:
        names, width, what = _SYMBOLS[text]
        return _dec_named(names, width, what)
    if text == "ct label":
        return _dec_label
    if text in ("meta hour", "meta time"):
        return _dec_clock(text)
    if text.startswith("@"):  # raw payload @base,offset,length: a value of `length` bits
        bits = V.parse_int(text.split(",")[-1]) or 0
        return lambda v: _dec_bits(v, bits)
    if text.startswith("osf "):
        return _dec_osf
    if text.startswith(("numgen ", "jhash ", "symhash ")):  # (a 32-bit register)
        return lambda v: V.dec_int(v, None, 32)
    if re.fullmatch(r"tcp option \S+", text):  # no field: it is there or not
        return lambda v: V.dec_int(v, {"exists": 1, "missing": 0}, 1)
    if text == "meta secmark":
        def secmark(v):
            raise V.err(v, "meta secmark: cannot be used with a constant on the right-hand side "
                           "(nft matches a secmark object)")
        return secmark
    width = _FIELD_WIDTHS.get(text)
    if width is not None:
        return lambda v: V.dec_int(v, None, width)
    return V.dec_generic


# fields whose values are names of nft's symbol tables (exactly as written) or numbers of a
# width: anything else is nft's "Could not parse ..." (measured with nft -c)
_ETHERTYPES = ("ip", "arp", "ip6", "vlan", "8021q", "8021ad")
_SYMBOLS = {
    "meta pkttype": (("host", "unicast", "broadcast", "multicast", "other"), 8, "packet type"),
    "meta iiftype": (("ether", "ppp", "ipip", "ipip6", "loopback", "sit", "ipgre"), 16,
                     "network interface type"),
    "meta oiftype": (("ether", "ppp", "ipip", "ipip6", "loopback", "sit", "ipgre"), 16,
                     "network interface type"),
    "meta nfproto": (("ipv4", "ipv6"), 8, "netfilter protocol"),
    "ct l3proto": (("ipv4", "ipv6"), 8, "netfilter protocol"),
    "ether type": (_ETHERTYPES, 16, "Ethernet protocol"),
    "meta protocol": (_ETHERTYPES, 16, "Ethernet protocol"),
    "vlan type": (_ETHERTYPES, 16, "Ethernet protocol"),
    "arp operation": ({"request": 1, "reply": 2, "rrequest": 3, "rreply": 4, "inrequest": 8,
                       "inreply": 9, "nak": 10}, 16, "ARP operation"),
    "dccp type": (("request", "response", "data", "ack", "dataack", "closereq", "close",
                   "reset", "sync", "syncack"), 4, "DCCP packet type"),
}


def _dec_named(names, width: int, what: str):
    def decode(v):
        if isinstance(v, Val) and v.text in names:
            return v.text
        if isinstance(v, RangeV) and isinstance(names, dict):
            # JSON's {"range": ["request", "reply"]}: the range nft lists as `1-2`
            return V.dec_int(v, names, width)
        try:
            return V.dec_int(v, None, width)
        except FwcSyntaxError as e:
            if "exceeds" in e.message:
                raise
            raise V.err(v, f"could not parse {what} '{getattr(v, 'text', '?')}' (nft: "
                           f"{', '.join(names)}, or a number)") from None
    return decode


def _dec_label(v):
    """`ct label N` (bit 0 to 127) or a name of /etc/connlabel.conf, which nft reads when it
    loads the ruleset (so the name becomes its bit here)."""
    if isinstance(v, Val) and V.parse_int(v.text) is None:
        bit = _connlabels().get(v.text)
        if bit is None:
            raise V.err(v, f"/etc/connlabel.conf: could not parse conntrack label '{v.text}' "
                           "(nft reads the label names there when it loads the ruleset)")
        return bit
    got = V.dec_int(v, None, 8)
    if isinstance(got, int) and got > 127:
        raise V.err(v, f"ct label {got}: bit {got} out of range (127 max)")
    return got


def _connlabels() -> dict:
    labels = {}
    try:
        with open("/etc/connlabel.conf") as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) < 128:
                    labels.setdefault(parts[1], int(parts[0]))
    except OSError:
        pass
    return labels


def _dec_clock(expr: str):
    """`meta hour "10:00"`, `meta time "2026-12-05 14:00"` (quoted, as fw4 writes them) must be
    times nft can read ("wrong time format", "Cannot parse date"); numbers are seconds."""
    from fwc.conntrack.fields import _local_seconds, time_range_ends

    def decode(v):
        if isinstance(v, Val) and v.quoted:
            ends = time_range_ends(v.text) or (v.text, v.text)
            if any(_local_seconds(x, expr) is None for x in ends):
                raise V.err(v, f"'{v.text}': " + ("wrong time format (nft: HH:MM or HH:MM:SS)"
                                                  if expr == "meta hour" else
                                                  "cannot parse date (nft: YYYY-MM-DD "
                                                  "[HH:MM[:SS]])"))
            return v.text
        return V.dec_generic(v)
    return decode


# header fields of a fixed width: a value that does not fit is nft's "value exceeds valid range"
_FIELD_WIDTHS = {"srh last-entry": 8, "srh flags": 8, "srh tag": 16, "ct zone": 16, "meta cpu": 32, "ip frag-off": 16, "sctp vtag": 32,
                 "ah spi": 32, "esp spi": 32, "ah sequence": 32, "esp sequence": 32,
                 "comp cpi": 16, "meta iifgroup": 32, "meta oifgroup": 32, "meta cgroup": 32,
                 "socket mark": 32, "socket transparent": 1, "socket wildcard": 1,
                 "ipsec in reqid": 32, "ipsec out reqid": 32, "ip6 ecn": 2,"meta length": 32, "ip length": 16, "ip6 length": 16, "ip ttl": 8,
                 "ip6 hoplimit": 8, "ip id": 16, "ip hdrlength": 4, "ip version": 4,
                 "ip6 version": 4, "ip6 flowlabel": 20, "vlan id": 12, "vlan pcp": 3,
                 "tcp window": 16, "tcp urgptr": 16, "tcp doff": 4, "tcp sequence": 32,
                 "tcp ackseq": 32, "udp length": 16, "icmp id": 16, "icmp sequence": 16,
                 "icmp mtu": 16, "icmp checksum": 16, "icmpv6 id": 16, "icmpv6 sequence": 16,
                 "icmpv6 mtu": 32, "icmpv6 checksum": 16, "icmpv6 max-delay": 16,
                 "ip checksum": 16, "tcp checksum": 16, "udp checksum": 16,
                 "udplite checksum": 16, "udplite csumcov": 16, "sctp checksum": 32,
                 "igmp checksum": 16, "igmp mrt": 8, "tcp reserved": 4, "ah reserved": 16,
                 "ah hdrlength": 8, "comp flags": 8, "vlan cfi": 1, "vlan dei": 1}


def _dec_day(v):
    """`meta day`: a day's name as nft spells it (case and all) or 0 (Sunday) to 6."""
    if isinstance(v, Val) and v.text in ir.WEEKDAYS:
        return v.text
    why = (f"'{getattr(v, 'text', '?')}' is no day of the week (nft: Sunday .. Saturday, as "
           "written, or 0 to 6)")
    try:
        got = V.dec_int(v, None, 8)
    except FwcSyntaxError:
        raise V.err(v, why) from None
    lo, hi = (got.lo, got.hi) if isinstance(got, ir.Range) else (got, got)
    if not 0 <= lo <= hi <= 6:
        raise V.err(v, why)
    return got


def _dec_bits(v, bits: int):
    if bits == 0:
        got = V.dec_int(v, None, 8)
        if got != 0:
            raise V.err(v, f"value {getattr(v, 'text', got)} exceeds valid range 0-0")
        return got
    return V.dec_int(v, None, bits)


def _dec_osf(v):
    if isinstance(v, Val) and len(v.text.encode()) > 16:
        raise V.err(v, f"'{v.text}': longer than 16 bytes (nft: String exceeds maximum length "
                       "of 16)")
    return V.dec_generic(v)


def _dec_ugid(text):
    def decode(v):
        lo, dash, hi = v.text.partition("-") if isinstance(v, Val) else ("", "", "")
        numeric_range = dash and V.parse_int(lo) is not None and V.parse_int(hi) is not None
        if isinstance(v, Val) and V.parse_int(v.text) is None and not numeric_range:
            import grp
            import pwd
            try:
                return pwd.getpwnam(v.text).pw_uid if text == "meta skuid" else grp.getgrnam(v.text).gr_gid
            except KeyError:
                what = "user" if text == "meta skuid" else "group"
                raise V.err(v, f"unknown {what} '{v.text}' on this host (nft resolves {what} "
                               "names when it loads the ruleset: translate on the host it is "
                               "for, or write the number)") from None
        return V.dec_int(v, None, 32)
    return decode


# field names nft spells two ways (nft 1.0.6 compiles both alike): the IR has one
_FIELD_ALIASES = {"vlan cfi": "vlan dei"}
# ethertypes by one name each (`0x0800` is `ip`, `8021q` is `vlan`)
_ETHERTYPE_ALIASES = {"8021q": "vlan", 0x0800: "ip", 0x0806: "arp", 0x86DD: "ip6",
                      0x8100: "vlan", 0x88A8: "8021ad"}
_ETHERTYPE_FIELDS = ("ether type", "vlan type", "meta ibrvproto", "arp ptype", "meta protocol")


def sel_text(e, ctx: Ctx) -> str:
    if isinstance(e, Sel):
        return _FIELD_ALIASES.get(e.text, e.text)
    raise ctx.syntax("expected a field (for example 'ip saddr')", e.loc)


def _elements(rhs, ctx=None, counted_ok=False) -> list:
    """Elements of a set literal; nested anonymous sets (`{ { a, b }, c }`) are merged.
    Elements with their own counter (Counted) are refused unless the caller handles them."""
    if not isinstance(rhs, SetLit):
        return [rhs]
    out = []
    for e in rhs.elems:
        out.extend(_elements(e, ctx, counted_ok) if isinstance(e, SetLit) else [e])
    if not counted_ok:
        for e in out:
            if isinstance(e, Counted) or isinstance(e, MapElem) and isinstance(e.key, Counted):
                raise _counted_refusal(e, ctx, "here")
    return out


def _counted_refusal(e, ctx, where):
    msg = f"per-element counters {where} (only in anonymous sets and verdict maps)"
    if ctx is None:
        return Unsupported(msg, e.loc)
    return ctx.unsupported(msg, e.loc)


def _uncount(e) -> tuple:
    """(element, its per-element statements) with a Counted wrapper taken off."""
    if isinstance(e, Counted):
        return e.value, (ir.Counter(e.packets, e.bytes),)
    return e, ()


def _with_stmts(pairs) -> tuple:
    """Sorted (elements, element_stmts) from (element tuple, stmts) pairs; element_stmts is
    empty when no element has statements, so plain sets keep their plain IR."""
    merged = {}
    for t, st in pairs:
        if merged.get(t):
            if st and st != merged[t]:
                raise ValueError(t)
            continue
        merged[t] = st
    elems = tuple(sorted(merged, key=tuple_order_key))
    stmts = tuple(merged[t] for t in elems) if any(merged.values()) else ()
    return elems, stmts


def _counted_set_match(keys, rhs, neg, rel, ctx, decode):
    """A set literal of which some element carries a counter: an inline SetMatch whose
    element_stmts say which counter runs for which element."""
    if neg:
        raise ctx.unsupported("per-element counters in a negated set match", rel.loc)
    pairs = []
    for e in _elements(rhs, ctx, counted_ok=True):
        if isinstance(e, MapElem):
            raise ctx.syntax("a map is not valid as a match value (use vmap)", rel.loc)
        v, st = _uncount(e)
        pairs.append((decode(v), st))
    try:
        elems, stmts = _with_stmts(pairs)
    except ValueError:
        raise ctx.unsupported("one set element listed twice with different counters", rel.loc)
    return ir.SetMatch(keys, None, elems, negate=neg, element_stmts=stmts)


def _has_counted(rhs) -> bool:
    return isinstance(rhs, SetLit) and any(
        isinstance(e, Counted) or (isinstance(e, SetLit) and _has_counted(e)) for e in rhs.elems)


def _as_ranges(vals, loc, ctx) -> tuple:
    out = []
    for v in vals:
        if isinstance(v, int):
            out.append(ir.Range.one(v))
        elif isinstance(v, ir.Range):
            out.append(v)
        else:
            raise ctx.syntax(f"type mismatch: expected a number or range, got {v}", loc)
    return tuple(out)


def _single(vals):
    return vals[0] if len(vals) == 1 else None


# --------------------------------------------------------------------------- matches


_BITMASK_FIELDS = frozenset({"ct state", "ct status", "tcp flags", "ct event", "ct label"})


def lower_rel(rel: Rel, ctx: Ctx):
    lhs, op, rhs = rel.lhs, rel.op, rel.rhs
    neg = op == "!="
    if isinstance(lhs, Concat):
        keys = tuple(sel_text(p, ctx) for p in lhs.parts)
        if op not in ("", "==", "!="):
            raise ctx.syntax("concatenations compare only with == or !=", rel.loc)
        if isinstance(rhs, SetRef):
            return ir.SetMatch(keys, _check_set(rhs, ctx, keys), negate=neg)
        if _has_counted(rhs):
            return _counted_set_match(keys, rhs, neg, rel, ctx, lambda v: _decode_tuple(keys, v, ctx))
        elems = {_decode_tuple(keys, e, ctx) for e in _elements(rhs, ctx)}
        return ir.SetMatch(keys, None, tuple(sorted(elems, key=tuple_order_key)), negate=neg)
    if isinstance(lhs, Binop):
        return _lower_binop_rel(rel, ctx)
    text = sel_text(lhs, ctx)
    if text in ("rt nexthop", "rt ip nexthop"):
        # (nft types the value by the table: IPv4 in ip and inet tables, IPv6 in ip6 ones)
        want = 6 if ctx.family == "ip6" else 4
        if any(v != want for v in _rhs_versions(rhs)):
            raise ctx.syntax(f"'{text}': an IPv{10 - want} address in an {ctx.family} table "
                             "(nft: Could not resolve hostname: Address family for hostname "
                             "not supported)", rel.loc)
    if text == "rt ip6 nexthop" and ctx.family == "ip":
        raise ctx.syntax(f"'{text}' in an ip table (nft: ip6 nexthop will not match)", rel.loc)
    if text in ("meta ibrname", "meta obrname") and ctx.family != "bridge":
        raise ctx.syntax(f"{text} outside a bridge table (nft: Could not process rule: "
                         "Operation not supported)", rel.loc)
    if op == "" and isinstance(rhs, SetLit) and len(rhs.elems) == 1 and \
            text in _BITMASK_FIELDS and not isinstance(rhs.elems[0], (MapElem, Concat)):
        # nft 1.0.6 makes a one-element set of a bitmask field the implicit bit test: `ct
        # status { dnat }` is `ct status dnat`, any of the bits (`== { dnat }` and `!= {
        # dnat }` compare the whole value; bytecode-checked)
        return lower_rel(Rel(lhs, "", rhs.elems[0], rel.loc), ctx)
    if isinstance(rhs, SetRef):
        if op not in ("", "==", "!="):
            raise ctx.syntax("a set lookup compares only with == or !=", rel.loc)
        return ir.SetMatch((text,), _check_set(rhs, ctx, (text,)), negate=neg)
    if isinstance(rhs, (Sel, Binop, MapLookup)):
        raise ctx.unsupported(f"comparing '{text}' with another expression", rel.loc)
    dec = decoder_for(text)
    if _has_counted(rhs):
        if op not in ("", "==", "!="):
            raise ctx.syntax("a set lookup compares only with == or !=", rel.loc)
        return _counted_set_match((text,), rhs, neg, rel, ctx, lambda v: (_single_value(text, v, dec, ctx),))
    is_set = isinstance(rhs, SetLit)
    flags = isinstance(rhs, FlagList)
    items = rhs.items if flags else _elements(rhs, ctx)
    if any(isinstance(x, MapElem) for x in items):
        raise ctx.syntax("a map is not valid as a match value (use vmap)", rel.loc)
    if any(isinstance(x, Concat) for x in items):
        raise ctx.syntax(f"type mismatch: '{text}' is a single field, the value is a concatenation",
                         rel.loc)
    if is_set and not items:
        raise ctx.syntax("an empty set (nft: it matches nothing and is refused)", rel.loc)
    if is_set and text == "tcp flags" and any(isinstance(x, FlagList) for x in items):
        # `tcp flags { syn, syn | ack }`: the flags equal one of these combinations
        vals = sorted({_flag_bits(x, ctx) for x in items})
        return ir.FieldMatch(text, tuple(vals), "eq", negate=neg)
    vals = [dec(x) for x in items]
    if text in _ETHERTYPE_FIELDS:
        vals = [_ETHERTYPE_ALIASES.get(v, v) if isinstance(v, (str, int)) else v for v in vals]
    # `x != 5-5` is how fwc keeps nft from merging adjacent negations: the value 5
    vals = [v.lo if isinstance(v, ir.Range) and v.lo == v.hi and not is_set else v for v in vals]
    if is_set:  # set elements have no order
        vals = sorted(set(vals), key=_order_key)
    if flags and rhs.exact:  # `!= a,b` on a bitmask compares the whole value
        return _generic(text, op, vals, neg, is_set, flags, rel, ctx)
    special = _SPECIAL.get(text) or _prefix_special(text)
    if ctx.family in ir.L2_FAMILIES and text not in _L2_SPECIAL and not text.startswith("numgen "):
        special = None  # kept as nft text: the IR node assumes an IP hook (see _L2_SPECIAL)
    if special is not None:
        m = special(text, op, vals, neg, is_set, flags, rel, ctx)
        if m is not None:
            return m
    return _generic(text, op, vals, neg, is_set, flags, rel, ctx)


def _order_key(v):
    if isinstance(v, int):
        return (0, v, 0)
    if isinstance(v, ir.Range):
        return (0, v.lo, v.hi)
    if isinstance(v, ir.AddrRange):
        return (1, v.lo.version, int(v.lo), int(v.hi))
    if hasattr(v, "network_address"):
        return (1, v.version, int(v.network_address), int(v.broadcast_address))
    return (2, str(v), 0)


def tuple_order_key(t) -> tuple:
    """Canonical order of set elements (sets have none), so equal sets give equal IR."""
    return tuple(_order_key(v) for v in t)


def _generic(text, op, vals, neg, is_set, flags, rel, ctx):
    if op in ("<", ">", "<=", ">="):
        if len(vals) != 1 or is_set:
            raise ctx.syntax(f"'{op}' needs a single value", rel.loc)
        return ir.FieldMatch(text, tuple(vals), {"<": "lt", ">": "gt", "<=": "le", ">=": "ge"}[op])
    if flags:
        if op == "":
            return ir.FieldMatch(text, tuple(vals), "any")
        return ir.FieldMatch(text, (_flag_or(text, vals),), "eq", negate=neg)
    return ir.FieldMatch(text, tuple(vals), "eq", negate=neg)


def _flag_or(text: str, vals: list):
    """The OR of flag values, one way whichever way it was written (`syn,ack`, JSON's 18;
    `new|invalid`, `invalid | new`): tcp flags as a number (as nft lists them), other
    bitmasks as their names in bit order."""
    from fwc.conntrack.fields import SYMBOLS
    table = SYMBOLS.get(text, {})
    bits = [v if isinstance(v, int) else table.get(str(v).lower()) for v in vals]
    if any(b is None for b in bits):
        return "|".join(str(v) for v in vals)
    if text == "tcp flags":
        out = 0
        for b in bits:
            out |= b
        return out
    return "|".join(str(v) for _, v in sorted(zip(bits, vals), key=lambda bv: bv[0]))


def _single_value(text, v, dec, ctx):
    if isinstance(v, Concat):
        raise ctx.syntax(f"type mismatch: '{text}' is a single field, the value is a concatenation",
                         v.loc)
    if text == "tcp flags" and isinstance(v, FlagList):
        return _flag_bits(v, ctx)
    return dec(v)


def _decode_tuple(keys, e, ctx) -> tuple:
    if isinstance(e, Counted):
        raise _counted_refusal(e, ctx, "in named sets and maps")
    parts = e.parts if isinstance(e, Concat) else (e,)
    if isinstance(e, MapElem):
        raise ctx.syntax("a map is not valid as a match value", e.loc)
    if len(parts) != len(keys):
        raise ctx.syntax(f"type mismatch: element has {len(parts)} fields, the key has {len(keys)}",
                         e.loc)
    return tuple(decoder_for(k)(p) for k, p in zip(keys, parts))


_PORT_KEYS = {f"{p} {f}" for p in ("tcp", "udp", "udplite", "sctp", "dccp", "th")
              for f in ("sport", "dport")}


def _key_datatype(text: str):
    """The datatype of a key expression or set type, for the few that often meet (None:
    not checked)."""
    if text in ("ip saddr", "ip daddr", "ipv4_addr"):
        return "ipv4_addr"
    if text in ("ip6 saddr", "ip6 daddr", "ipv6_addr"):
        return "ipv6_addr"
    if text in _PORT_KEYS or text == "inet_service":
        return "inet_service"
    if text in ("ether saddr", "ether daddr", "ether_addr"):
        return "ether_addr"
    if text in ("meta iifname", "meta oifname", "ifname"):
        return "ifname"
    return None


def _check_set(ref: SetRef, ctx, keys=None) -> str:
    st = ctx.sets.get(ref.name)
    if st is None:
        raise ctx.syntax(f"set '{ref.name}' does not exist in this table", ref.loc)
    if keys is not None and getattr(st, "types", None) and len(keys) == len(st.types):
        for k, t in zip(keys, st.types):
            want, got = _key_datatype(t), _key_datatype(k)
            if want and got and want != got:
                raise ctx.syntax(f"datatype mismatch: set '{ref.name}' holds {want}, "
                                 f"'{k}' is {got}", ref.loc)
    return ref.name


def _ordered_range(op, v, width_max, rel, ctx):
    """`< v` etc. as an inclusive range of the field's values."""
    if not isinstance(v, int):
        raise ctx.syntax(f"'{op}' needs a number", rel.loc)
    lo, hi = {"<": (0, v - 1), "<=": (0, v), ">": (v + 1, width_max), ">=": (v, width_max)}[op]
    if lo > hi:
        return None
    return ir.Range(lo, hi)


def _ranged(make, width_max):
    """Handler for integer fields that have a ranged IR class: values, sets and <,> all fit."""
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        if flags:
            return None
        if op in ("<", ">", "<=", ">="):
            r = _ordered_range(op, vals[0], width_max, rel, ctx)
            return None if r is None else make(text, (r,), False)
        return make(text, _as_ranges(vals, rel.loc, ctx), neg)
    return handler


def _single_ranged(make, width_max):
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        if flags or len(vals) != 1:
            return None
        if op in ("<", ">", "<=", ">="):
            r = _ordered_range(op, vals[0], width_max, rel, ctx)
            return None if r is None else make(r, False)
        return make(_as_ranges(vals, rel.loc, ctx)[0], neg)
    return handler


def _l3_length(family, header, text, op, vals, neg, is_set, flags, rel, ctx):
    """`ip length` is the IPv4 total length, `ip6 length` the IPv6 payload length (the header's
    40 bytes excluded): the IR Length of the whole L3 packet, in a table of that family only
    (in inet tables the field also restricts the family)."""
    if ctx.family != family:
        return None
    m = _single_ranged(lambda r, n: ir.Length(ir.Range(r.lo + header, r.hi + header), n),
                       0xFFFF)(text, op, vals, neg, is_set, flags, rel, ctx)
    return m


def _eq_only(fn):
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        if op not in ("", "==", "!="):
            return None
        return fn(text, op, vals, neg, is_set, flags, rel, ctx)
    return handler


@_eq_only
def _address(text, op, vals, neg, is_set, flags, rel, ctx):
    if flags:
        return None
    return ir.Address(text.split()[-1], tuple(vals), neg)


@_eq_only
def _proto(text, op, vals, neg, is_set, flags, rel, ctx):
    if flags or (text == "ip protocol" and ctx.family != "ip"):
        return None  # outside ip tables `ip protocol` also requires IPv4: not a bare Proto
    protos = set()
    for v in vals:
        protos |= set(range(v.lo, v.hi + 1)) if isinstance(v, ir.Range) else {v}
    return ir.Proto(frozenset(protos), neg)


@_eq_only
def _iface(text, op, vals, neg, is_set, flags, rel, ctx):
    # (a one-name set, `iifname { $lan }`, is that name: wildcards included)
    if flags or len(vals) != 1 or op not in ("", "==", "!="):
        return None
    return ir.Interface(text.split()[-1], vals[0], neg)


def _mark(text, op, vals, neg, is_set, flags, rel, ctx):
    if op not in ("", "==", "!=") or is_set or flags or len(vals) != 1:
        return None
    kind = text.split()[0]
    v = rel.rhs
    if isinstance(v, Val) and "/" in v.text:  # `meta mark 0xffffff00/24`
        base, _, plen = v.text.partition("/")
        n = V.parse_int(base)
        if n is None or V.parse_int(plen) is None or not 0 <= int(plen) <= 32:
            raise ctx.syntax(f"invalid mark prefix '{v.text}'", v.loc)
        mask = (0xFFFFFFFF << (32 - int(plen))) & 0xFFFFFFFF
        return ir.Mark(kind, n & mask, mask, neg)
    if not isinstance(vals[0], int):
        return None
    return ir.Mark(kind, vals[0], 0xFFFFFFFF, neg)


def _tcp_flags(text, op, vals, neg, is_set, flags, rel, ctx):
    if is_set or op not in ("", "==", "!="):
        return None
    if any(not isinstance(v, str) for v in vals):
        return None
    names = frozenset(V.TCP_FLAG_IR[v] for v in vals)
    if op == "==" or (op == "!=" and not flags):
        return ir.TcpFlags(frozenset(ir.TCP_FLAGS), names, neg)
    # implicit operator: "any of these flags is set"
    if len(names) == 1:
        return ir.TcpFlags(names, names, neg)
    return ir.TcpFlags(names, frozenset(), not neg)


def _ct_state(text, op, vals, neg, is_set, flags, rel, ctx):
    if op not in ("", "==", "!=") or any(not isinstance(v, str) for v in vals):
        return None
    if op == "==" and flags:
        return None
    return ir.CtState(frozenset(v.upper() for v in vals), neg)


def _ct_status(text, op, vals, neg, is_set, flags, rel, ctx):
    # implicit operator on a bitmask (`ct status snat,dnat`, `ct status ! snat,dnat`): any /
    # none of the bits.  `==`, `!=` and sets compare the whole value (nft emits cmp eq/neq),
    # which is not a bit test: those stay generic field comparisons.
    if op not in ("", "!=") or is_set or any(not isinstance(v, str) for v in vals):
        return None
    if op == "!=" and not flags:
        return None
    names = [n for v in vals for n in v.split("|")]
    if any(n not in V.CT_STATUS for n in names):
        return None
    return ir.CtStatus(frozenset(V.CT_STATUS[n] for n in names), neg)


def _ct_direction(text, op, vals, neg, is_set, flags, rel, ctx):
    if op not in ("", "==", "!=") or len(vals) != 1 or not isinstance(vals[0], str):
        return None
    return ir.CtDirection(vals[0].upper(), neg)


def _icmp(family):
    @_eq_only
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        if flags or is_set or len(vals) != 1 or not isinstance(vals[0], int):
            return None
        return ir.Icmp(family, vals[0], ir.Range(0, 255), neg)
    return handler


def _ttl(family):
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        if flags or is_set or len(vals) != 1 or not isinstance(vals[0], int):
            return None
        if ctx.family not in (family, "inet"):
            return None
        o = {"": "eq", "==": "eq", "!=": "ne", "<": "lt", ">": "gt"}.get(op)
        return None if o is None else ir.Ttl(family, o, vals[0])
    return handler


def _dscp(family):
    @_eq_only
    def handler(text, op, vals, neg, is_set, flags, rel, ctx):
        # the IR's Dscp has no family: exact only inside a table of that family
        if ctx.family != family or flags or is_set or not isinstance(vals[0], int):
            return None
        return ir.Dscp(vals[0], neg)
    return handler


@_eq_only
def _helper(text, op, vals, neg, is_set, flags, rel, ctx):
    # (`ct helper != X` stops the rule without a master; the IR's negated Helper, xt_helper's,
    # holds then: it stays a FieldMatch)
    for v in vals:
        if isinstance(v, str) and not v:
            raise ctx.syntax("ct helper \"\": an empty string is not allowed", rel.loc)
        if isinstance(v, str) and len(v.encode()) > 16:
            raise ctx.syntax(f"ct helper {v!r}: longer than 16 bytes (nft: String exceeds "
                             "maximum length of 16)", rel.loc)
    if is_set or flags or len(vals) != 1 or not isinstance(vals[0], str) or neg or not vals[0]:
        return None
    return ir.Helper(vals[0], neg)


@_eq_only
def _pkttype(text, op, vals, neg, is_set, flags, rel, ctx):
    # nft calls a packet for this host "host"; iptables (and the IR) call it "unicast"
    kind = {"host": "unicast"}.get(vals[0], vals[0]) if len(vals) == 1 else None
    if op not in ("", "==", "!=") or is_set or flags or kind not in ("unicast", "broadcast",
                                                                         "multicast"):
        return None
    return ir.PktType(kind, neg)


@_eq_only
def _mac(text, op, vals, neg, is_set, flags, rel, ctx):
    if is_set or len(vals) != 1:
        return None
    return ir.Mac(vals[0], neg)


@_eq_only
def _secpath(text, op, vals, neg, is_set, flags, rel, ctx):
    if len(vals) != 1 or vals[0] not in ("exists", "missing", 0, 1):
        return None
    present = vals[0] in ("exists", 1)
    # meta secpath/ipsec: the packet was decrypted; rt ipsec: its route will encrypt it
    return ir.IpsecPolicy("out" if text == "rt ipsec" else "in", present != neg)


@_eq_only
def _ct_addr(text, op, vals, neg, is_set, flags, rel, ctx):
    words = text.split()
    fam = getattr(rel.lhs, "family", None)
    want = {"ip": 4, "ip6": 6}.get(fam)
    if want and any(getattr(v, "version", want) != want for v in vals):
        raise ctx.syntax(f"ct {words[1] if len(words) > 1 else ''} {fam} {words[-1]}: an address "
                         f"of the other family (nft: Could not resolve hostname: Address family "
                         "for hostname not supported)", rel.loc)
    if len(words) != 3 or flags:
        return None
    return ir.CtAddress(words[1], words[2], tuple(vals), neg)


def _ct_port(text, op, vals, neg, is_set, flags, rel, ctx):
    words = text.split()
    if len(words) != 3 or op not in ("", "==", "!=") or flags:
        return None
    return ir.CtPort(words[1], "sport" if words[2] == "proto-src" else "dport",
                     _as_ranges(vals, rel.loc, ctx), neg)


@_eq_only
def _ct_proto(text, op, vals, neg, is_set, flags, rel, ctx):
    if is_set or flags or len(vals) != 1 or not isinstance(vals[0], int):
        return None
    return ir.CtProto(vals[0], neg)


@_eq_only
def _fib_type(text, op, vals, neg, is_set, flags, rel, ctx):
    # text: "fib daddr . iif type"
    words = text.split()[1:-1]
    fields = [w for w in words if w != "."]
    addr = [f for f in fields if f in ("saddr", "daddr")]
    rest = [f for f in fields if f not in ("saddr", "daddr")]
    if len(addr) != 1 or len(rest) > 1 or (rest and rest[0] not in ("iif", "oif")):
        return None
    if any(not isinstance(v, str) for v in vals) or (op == "==" and flags):
        return None
    limit = {"iif": "in", "oif": "out"}.get(rest[0]) if rest else None
    return ir.AddrType(addr[0], frozenset(v.upper() for v in vals), limit, neg)


def _numgen(text, op, vals, neg, is_set, flags, rel, ctx):
    words = text.split()  # numgen MODE mod N [offset O]
    if len(words) != 4 or is_set or flags or len(vals) != 1 or not isinstance(vals[0], int):
        return None
    mode, mod = words[1], V.parse_int(words[3])
    if mod is None or mod <= 0:
        raise ctx.syntax("numgen needs a positive modulus", rel.loc)
    v = vals[0]
    if mode == "random":
        hits = {"": 1, "==": 1, "<": v, "<=": v + 1, ">": mod - v - 1, ">=": mod - v}.get(op)
        if hits is None or op in ("", "==") and v >= mod:
            return None
        hits = max(0, min(mod, hits))
        return ir.Statistic("random", probability=hits / mod)
    if mode == "inc" and op in ("", "==", "!=") and v < mod:
        return ir.Statistic("nth", every=mod, packet=v, negate=neg)
    return None


_SPECIAL = {
    "ip saddr": _address, "ip daddr": _address, "ip6 saddr": _address, "ip6 daddr": _address,
    "meta l4proto": _proto, "ip protocol": _proto,
    "meta iifname": _iface, "meta oifname": _iface,
    "meta mark": _mark, "ct mark": _mark,
    "tcp flags": _tcp_flags,
    "ct state": _ct_state, "ct status": _ct_status, "ct direction": _ct_direction,
    "ct helper": _helper,
    "icmp type": _icmp("ip"), "icmpv6 type": _icmp("ip6"),
    "ip ttl": _ttl("ip"), "ip6 hoplimit": _ttl("ip6"),
    "ip dscp": _dscp("ip"), "ip6 dscp": _dscp("ip6"),
    "meta pkttype": _pkttype,
    "meta skuid": _single_ranged(lambda r, n: ir.SkUid(r, n), 0xFFFFFFFF),
    "meta skgid": _single_ranged(lambda r, n: ir.SkGid(r, n), 0xFFFFFFFF),
    "meta length": _single_ranged(lambda r, n: ir.Length(r, n), 0xFFFFFFFF),
    "ip length": lambda *a: _l3_length("ip", 0, *a),
    "ip6 length": lambda *a: _l3_length("ip6", 40, *a),
    "ct expiration": _single_ranged(lambda r, n: ir.CtExpire(r, n), 0xFFFFFFFF),
    "ether saddr": _mac,
    "meta secpath": _secpath, "meta ipsec": _secpath, "rt ipsec": _secpath,
    "ct protocol": _ct_proto, "ct original protocol": _ct_proto,
}
for _p in _PORT_PROTOS:
    for _f in ("sport", "dport"):
        _SPECIAL[f"{_p} {_f}"] = _ranged(
            lambda text, rs, n: ir.Port(text.split()[0], text.split()[1], rs, n), 0xFFFF)
for _d in ("original", "reply"):
    for _f in ("saddr", "daddr"):
        _SPECIAL[f"ct {_d} {_f}"] = _ct_addr
    for _f in ("proto-src", "proto-dst"):
        _SPECIAL[f"ct {_d} {_f}"] = _ct_port


# In bridge and netdev tables only these fields become their IR node (whose nft form is the
# same text in every family); the others (`ip protocol`, `meta length`, `fib`, `ct original
# saddr`, ...) stay FieldMatch, nft text read in the table's own family.
_L2_SPECIAL = frozenset({"ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr", "meta l4proto",
                         "meta iifname", "meta oifname", "meta mark", "ct mark", "tcp flags",
                         "ct state", "ct status", "ct direction", "icmp type", "icmpv6 type",
                         "meta pkttype", "ether saddr"} |
                        {f"{p} {f}" for p in _PORT_PROTOS for f in ("sport", "dport")})


def _prefix_special(text):
    if text.startswith("fib ") and text.endswith(" type"):
        return _fib_type
    if text.startswith("numgen "):
        return _numgen
    return None


def _lower_binop_rel(rel: Rel, ctx: Ctx):
    lhs, op = rel.lhs, rel.op
    if not isinstance(lhs.left, Sel) or isinstance(lhs.left, Binop):
        raise ctx.unsupported("nested bitwise expressions", rel.loc)
    text = lhs.left.text
    if lhs.op not in ("&", "^"):
        raise ctx.unsupported(f"bitwise '{lhs.op}' on '{text}' before a comparison", rel.loc)
    if text == "meta random" and lhs.op == "&" and op in ("<", ">=") and \
            isinstance(lhs.right, Val) and V.parse_int(lhs.right.text) == 0x7FFFFFFF and \
            isinstance(rel.rhs, Val):
        # xt_statistic's own test (iptables -m statistic --mode random, as fwc writes it):
        # (random & 0x7fffffff) < lround(2^31 * p)
        limit = V.parse_int(rel.rhs.text)
        if limit is not None and 0 <= limit <= 1 << 31:
            return ir.Statistic("random", probability=limit / (1 << 31), negate=op == ">=")
    if op not in ("", "==", "!="):
        raise ctx.unsupported(f"'{op}' after a bitwise operation on '{text}'", rel.loc)
    neg = op == "!="
    if text == "tcp flags":
        mask = _flag_set(lhs.right, ctx)
        if lhs.op != "&":
            raise ctx.unsupported("'tcp flags ^'", rel.loc)
        if isinstance(rel.rhs, SetLit):  # (flags & mask) is one of these combinations
            vals = sorted({_flag_bits(e, ctx) for e in _elements(rel.rhs)})
            return ir.FieldMatch(text, tuple(vals), "eq", mask=_flag_bits(lhs.right, ctx),
                                 negate=neg)
        comp = _flag_set(rel.rhs, ctx)
        if not comp <= mask:
            raise ctx.syntax("tcp flags compared with flags outside the mask never match", rel.loc)
        return ir.TcpFlags(mask, comp, neg)
    dec = decoder_for(text)
    full = _FIELD_MASKS.get(text)
    if lhs.op == "&" and full is not None and isinstance(lhs.right, Val) and \
            V.parse_int(lhs.right.text) == full:  # `ip dscp & 0x3f == x` is `ip dscp x`
        return lower_rel(Rel(lhs.left, rel.op, rel.rhs, rel.loc), ctx)
    if lhs.op == "&" and text in ("ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr") and \
            isinstance(rel.rhs, Val) and isinstance(lhs.right, Val):
        got = _masked_address(text, lhs.right, rel.rhs, neg)
        if got is not None:
            return got
    if text in ("ct state", "ct status") and lhs.op == "&" and not isinstance(rel.rhs, SetLit):
        mask, value = _bits_of(text, lhs.right, ctx), _bits_of(text, rel.rhs, ctx)
        got = _ct_bits_test(text, mask, value, neg)
        return got if got is not None else \
            ir.FieldMatch(text, (value,), "eq", mask=mask, negate=neg)
    if isinstance(rel.rhs, (SetLit, FlagList)):
        raise ctx.unsupported(f"a set after a bitwise operation on '{text}'", rel.loc)
    operand = V.dec_int(lhs.right) if not isinstance(lhs.right, FlagList) else \
        _or_ints(lhs.right, dec, ctx)
    try:
        value = dec(rel.rhs)
    except FwcSyntaxError:
        value = V.dec_int(rel.rhs)  # masked addresses compare with plain numbers
    if not isinstance(value, int) or not isinstance(operand, int):
        raise ctx.unsupported(f"bitwise operation on '{text}' with non-integer values", rel.loc)
    if lhs.op == "&":
        if text in ("meta mark", "ct mark") and value & ~operand == 0:
            return ir.Mark(text.split()[0], value, operand, neg)
        if text == "ip frag-off" and operand == 0x1FFF and value == 0 and ctx.family == "ip":
            return ir.Fragment(not neg)  # iptables -f: a non-first fragment (offset != 0)
        return ir.FieldMatch(text, (value,), "eq", mask=operand, negate=neg)
    # xor: (v ^ c) == value  <=>  v == value ^ c
    if text in ("meta mark", "ct mark"):
        return ir.Mark(text.split()[0], value ^ operand, 0xFFFFFFFF, neg)
    return ir.FieldMatch(text, (value,), "eq", xor=operand, negate=neg)


_FIELD_MASKS = {"ip dscp": 0x3F, "ip6 dscp": 0x3F, "ip ecn": 0x3, "ip6 ecn": 0x3}


def _masked_address(text, mask_v, value_v, negate: bool):
    """`ip saddr & MASK == VALUE`: an Address when MASK is a prefix (`& 255.255.0.0 ==
    10.1.0.0` is 10.1.0.0/16), else the masked comparison FieldMatch the iptables front end
    makes of `-s 10.0.12.0/255.0.255.0`; None when the operands are not addresses of the
    field's family (or numbers)."""
    import ipaddress
    width = 32 if text.startswith("ip ") else 128

    def num(v):
        n = V.parse_int(v.text)
        if n is not None:
            return n if 0 <= n < 1 << width else None
        try:
            a = ipaddress.ip_address(v.text)
        except ValueError:
            return None
        return int(a) if a.max_prefixlen == width else None
    mask, value = num(mask_v), num(value_v)
    if mask is None or value is None:
        return None
    cls = ipaddress.IPv4Network if width == 32 else ipaddress.IPv6Network
    bits = bin(mask).count("1")
    if mask == ((1 << width) - 1) ^ ((1 << (width - bits)) - 1) and not value & ~mask:
        return ir.Address(text.split()[1], (cls((value, bits)),), negate)
    # (a value with bits outside the mask never matches, as in nft)
    return ir.FieldMatch(text, (cls((value, width)),), "eq", mask=mask, negate=negate)


def _flag_set(e, ctx) -> frozenset:
    items = e.items if isinstance(e, FlagList) else (e,)
    out = set()
    for it in items:
        if isinstance(it, Val) and V.parse_int(it.text) == 0:
            continue
        if isinstance(it, FlagList):
            out |= _flag_set(it, ctx)
            continue
        name = V.dec_symbol(V.TCP_FLAG_BITS, "a tcp flag")(it)
        if isinstance(name, int):
            out |= {V.TCP_FLAG_IR[n] for n, b in V.TCP_FLAG_BITS.items() if name & b}
        else:
            out.add(V.TCP_FLAG_IR[name])
    return frozenset(out)


def _flag_bits(e, ctx) -> int:
    inv = {v: k for k, v in V.TCP_FLAG_IR.items()}
    return sum(V.TCP_FLAG_BITS[inv[f]] for f in _flag_set(e, ctx))


def _bits_of(text: str, v, ctx) -> int:
    """A `ct state` / `ct status` value as its bits: names (`dnat`, `snat|dnat`, `a,b`) or a
    number."""
    from fwc.conntrack.fields import SYMBOLS
    items = v.items if isinstance(v, FlagList) else (v,)
    n = 0
    for it in items:
        if isinstance(it, Val) and it.text.lower() in SYMBOLS[text]:
            n |= SYMBOLS[text][it.text.lower()]
        elif isinstance(it, Val) and V.parse_int(it.text) is not None:
            n |= V.parse_int(it.text)
        else:
            raise ctx.syntax(f"expected a {text} value, got {getattr(it, 'text', it)!r}",
                             getattr(it, "loc", None) or ctx_loc(v))
    return n


def ctx_loc(v):
    return getattr(v, "loc", None)


def _ct_bits_test(text: str, mask: int, value: int, neg: bool):
    """`ct status & dnat == dnat` (a bit set), `& (snat|dnat) != 0` (any of), `& x == 0` (none
    of) as the IR's bit tests; other masked compares stay a FieldMatch."""
    from fwc.conntrack.fields import SYMBOLS
    names = {b: n for n, b in SYMBOLS[text].items()}
    bits = [1 << k for k in range(32) if mask >> k & 1]
    if value & ~mask or any(b not in names for b in bits):
        return None
    if text == "ct state":
        states = frozenset(names[b].upper() for b in bits)
        one = len(bits) == 1 and value == mask
        if one or value == 0:  # (a packet has exactly one state bit)
            return ir.CtState(states, negate=neg != (value == 0))
        return None
    ir_names = frozenset(V.CT_STATUS[names[b]] for b in bits)
    if len(bits) == 1 and value == mask:
        return ir.CtStatus(ir_names, negate=neg)
    if value == 0:
        return ir.CtStatus(ir_names, negate=not neg)
    return None


def _or_ints(fl, dec, ctx):
    n = 0
    for it in fl.items:
        v = V.dec_int(it)
        n |= v
    return n


# --------------------------------------------------------------------------- statements


def lower_verdict(v: VerdictS, ctx: Ctx):
    k = v.kind
    if k == "accept":
        return ir.Accept()
    if k == "drop":
        return ir.Drop()
    if k == "return":
        return ir.Return()
    if k == "continue":
        return ir.Continue()
    if k == "jump":
        return ir.Jump(v.target)
    if k == "goto":
        return ir.Goto(v.target)
    raise ctx.unsupported(f"verdict '{k}'", v.loc)


def _vmap_key(p, ctx, loc):
    """(field text, mask or None) of one vmap key part; `tcp flags & (ack | urg)` is masked."""
    if not isinstance(p, Binop):
        return sel_text(p, ctx), None
    if p.op != "&" or not isinstance(p.left, Sel) or isinstance(p.right, (Sel, Binop)):
        raise ctx.unsupported(f"a verdict map keyed on a bitwise '{p.op}' expression", loc)
    text = p.left.text
    if text == "tcp flags":
        return text, _flag_bits(p.right, ctx)
    dec = decoder_for(text)
    mask = _or_ints(p.right, dec, ctx) if isinstance(p.right, FlagList) else V.dec_int(p.right)
    if not isinstance(mask, int):
        raise ctx.unsupported(f"a verdict map keyed on '{text}' & a non-integer mask", loc)
    return text, mask


def lower_vmap(s: VmapS, ctx: Ctx):
    key = s.key
    parts = key.parts if isinstance(key, Concat) else (key,)
    keyed = [_vmap_key(p, ctx, s.loc) for p in parts]
    keys = tuple(k for k, _ in keyed)
    masks = tuple(m for _, m in keyed) if any(m is not None for _, m in keyed) else ()
    if masks and len(keys) > 1:
        raise ctx.unsupported("a verdict map keyed on a concatenation with a bitwise part", s.loc)
    if isinstance(s.map, SetRef):
        if masks:
            raise ctx.unsupported("a named verdict map keyed on a bitwise expression", s.loc)
        return ir.VerdictMap(keys, _check_set(s.map, ctx))
    elems = {}
    for e in s.map.elems:
        if not isinstance(e, MapElem) or not isinstance(e.data, VerdictS):
            raise ctx.syntax("a verdict map needs 'key : verdict' elements", e.loc)
        key_ast, stmts = _uncount(e.key)
        verdict = lower_verdict(e.data, ctx)
        for k in _elements(key_ast, ctx):
            if masks and keys[0] == "tcp flags":
                t = (_flag_bits(k, ctx),)
            else:
                t = _decode_tuple(keys, k, ctx)
            if masks and isinstance(t[0], int) and t[0] & ~masks[0]:
                raise ctx.syntax("a verdict map key with bits outside the mask never matches", e.loc)
            if t in elems and elems[t] != (verdict, stmts):
                raise ctx.syntax("a verdict map key listed twice with different verdicts", e.loc)
            elems[t] = (verdict, stmts)
    if len(keys) == 1:
        from fwc.frontends.nft import _first_overlap
        keyed = list(elems)
        bad = _first_overlap([t[0] for t in keyed])
        if bad is not None:
            raise ctx.syntax("conflicting intervals specified (two elements of the verdict map "
                             "overlap)", s.loc)
    order = sorted(elems, key=tuple_order_key)
    stmts = tuple(elems[t][1] for t in order) if any(st for _, st in elems.values()) else ()
    return ir.VerdictMap(keys, None, tuple((t, elems[t][0]) for t in order), element_stmts=stmts,
                         key_masks=masks)


def lower_stmt(s: Stmt, ctx: Ctx):
    """(kind, node): kind is 'match', 'statement' or 'verdict'."""
    k, a = s.kind, s.args
    if ctx.family in ir.L2_FAMILIES and k in _IP_ONLY_STMTS:
        raise ctx.unsupported(f"'{k}' {in_table(ctx.family)} (the IR models it in ip, ip6 and "
                              "inet tables only)", s.loc)
    if k == "counter":
        if "name" in a:
            v = a["name"]
            if not isinstance(v, Val):
                raise ctx.unsupported("'counter name' from a map (a counter object per key)",
                                      s.loc)
            if v.text not in ctx.counters:
                raise ctx.syntax(f"counter '{v.text}' does not exist in this table (nft: No such "
                                 "file or directory)", v.loc)
            return "statement", ir.NamedCounter(v.text)
        return "statement", ir.Counter(V.dec_int(a["packets"], None, 64) if "packets" in a else 0,
                                       V.dec_int(a["bytes"], None, 64) if "bytes" in a else 0)
    if k == "log":
        return "statement", _log(a, s, ctx)
    if k == "limit" and "name" in a:
        v = a["name"]
        if not isinstance(v, Val):
            raise ctx.unsupported("'limit name' from a map (a limit object per key)", s.loc)
        if v.text not in ctx.limits:
            raise ctx.syntax(f"limit '{v.text}' does not exist in this table (nft: No such "
                             "file or directory)", v.loc)
        return "match", ir.NamedLimit(v.text, ctx.limits[v.text])
    if k == "limit":
        return "match", _limit(a, s, ctx)
    if k == "reject":
        return "verdict", _reject(a, s, ctx)
    if k == "queue":
        return "verdict", _queue(a, s, ctx)
    if k in ("snat", "dnat", "masquerade", "redirect"):
        return "verdict", _nat(k, a, s, ctx)
    if k == "notrack":
        return "statement", ir.Notrack()
    if k == "set":
        node = _set_stmt(a, s, ctx)
        if ctx.family in ir.L2_FAMILIES and isinstance(node, _IP_ONLY_SETS):
            raise ctx.unsupported(f"{type(node).__name__} {in_table(ctx.family)} (the IR models "
                                  "it in ip, ip6 and inet tables only)", s.loc)
        return "statement", node
    if k == "ct count":
        n = V.dec_int(a["count"])
        return "match", ir.CtCount(n, a["over"])
    if k == "setupdate":
        if a["op"] in ("update", "add") and len(a["stmts"]) == 1 and \
                isinstance(a["stmts"][0], Stmt) and a["stmts"][0].kind == "limit" and (
                    a["op"] == "update" or not a.get("timeout") and a["set"] in ctx.sets
                    and not ctx.sets[a["set"]].timeout):
            # (`add` does not refresh an element's timeout as `update` does: the same only
            # when the elements never time out: test_meter_with_a_timeout_refreshes_as_...)
            return "match", _hashlimit(a, s, ctx)
        if a["op"] == "add" and len(a["stmts"]) == 1 and isinstance(a["stmts"][0], Stmt) \
                and a["stmts"][0].kind == "ct count":
            return "match", _connlimit(a, s, ctx)
        if any(isinstance(x, Stmt) and x.kind == "map value" for x in a["stmts"]):
            raise ctx.unsupported(f"'{a['op']} @{a['set']}' with a map value (maps written from "
                                  "the packet path)", s.loc)
        if a["op"] == "add" and len(a["stmts"]) == 1 and isinstance(a["stmts"][0], Stmt) \
                and a["stmts"][0].kind == "limit":
            raise ctx.unsupported(f"a per-element limit in 'add @{a['set']}', whose elements time "
                                  "out: add keeps an element's first expiry, while hashlimit (like "
                                  "update) forgets a bucket only once it has gone idle", s.loc)
        if a["stmts"]:
            raise ctx.unsupported(f"statements inside '{a['op']} @{a['set']}' (meter-like per-element state)",
                                  s.loc)
        if a["set"] not in ctx.sets:
            raise ctx.syntax(f"set '{a['set']}' does not exist in this table", s.loc)
        key = a["key"]
        keys = tuple(sel_text(p, ctx) for p in key.parts) if isinstance(key, Concat) else (sel_text(key, ctx),)
        timeout = a.get("timeout")
        if timeout is not None:
            if a["op"] == "delete":
                raise ctx.syntax(f"'delete @{a['set']}' takes no timeout", s.loc)
            V.dec_time(Val(timeout, s.loc))  # (a syntax error when it is not a duration)
            if "timeout" not in ctx.sets[a["set"]].flags:
                raise ctx.syntax(f"set '{a['set']}' has no timeout flag: its elements cannot "
                                 "have a timeout", s.loc)
        return "statement", ir.SetUpdate(a["op"], a["set"], keys, timeout)
    if k == "quota":
        return "match", _quota(a, s, ctx)
    if k == "dup":
        if ctx.family == "inet":  # (its address has no family there; nft 1.0.6 refuses it)
            raise ctx.syntax("dup in an inet table (nft 1.0.6 cannot load it: use an ip or ip6 "
                             "table)", s.loc)
        dev = a.get("device")
        return "statement", ir.Dup(_nat_addr(a["to"], None, s, ctx)[0].network_address,
                                   None if dev is None else dev.text)
    if k == "tproxy":
        return "statement", _tproxy(a, s, ctx)
    if k == "synproxy":
        for o in ("mss", "wscale"):
            if o in a:
                a[o] = V.dec_int(a[o], None, 16 if o == "mss" else 8)
        if a.get("wscale") is not None and a["wscale"] > 14:
            raise ctx.syntax("synproxy wscale must be 0-14", s.loc)
        return "statement", ir.Synproxy(a.get("mss"), a.get("wscale"), "timestamp" in a,
                                        "sack-perm" in a)
    raise ctx.unsupported(f"nft statement '{k}'", s.loc)


# statements whose IR meaning is defined for IP hooks (conntrack templates, nat, IP replies)
_IP_ONLY_STMTS = frozenset({"reject", "queue", "snat", "dnat", "masquerade", "redirect",
                            "notrack", "dup", "tproxy", "synproxy"})
_IP_ONLY_SETS = (ir.CtHelperSet, ir.CtZoneSet, ir.SetTtl, ir.SetDscp, ir.TcpMss, ir.SetTos)

_HL_ADDR = {"saddr": "srcip", "daddr": "dstip"}
_HL_PORT = {"th sport": "srcport", "th dport": "dstport"}
_HL_PROTO_PORT = {f"{name} {f}": (ir.L4_PROTOS[name], "srcport" if f == "sport" else "dstport")
                  for name in ("tcp", "udp", "sctp", "dccp", "udplite") for f in ("sport", "dport")}
PORT_PROTOS = frozenset({6, 17, 132, 33, 136})


_QUOTA_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1024**2, "gbytes": 1024**3}


def _quota(a, s, ctx):
    """`quota [over] N UNIT [used U UNIT]`: a counter that has consumed U of N matches as
    a fresh one of N - U does (the kernel matches while the total is <= N)."""
    if "name" in a or "amount" not in a:
        raise ctx.unsupported("named quota objects", s.loc)
    unit = _QUOTA_UNITS.get(a.get("unit", "bytes"))
    used_unit = _QUOTA_UNITS.get(a.get("used_unit", "bytes"))
    if unit is None or used_unit is None:
        raise ctx.syntax(f"unknown quota unit {a.get('unit')!r}", s.loc)
    total = V.dec_int(a["amount"], None, 64) * unit
    used = V.dec_int(a["used"], None, 64) * used_unit if "used" in a else 0
    return ir.Quota(max(total - used, 0), bool(a.get("over")))


def _connlimit(a, s, ctx):
    """`add @S { ip saddr [and MASK] ct count [over] N }` on a dynamic address set: a
    connection list per masked address, i.e. xt_connlimit (fwc writes ConnLimit so).  Elements
    in a listing of a live ruleset are that state (the keys seen so far), not configuration."""
    name = a["set"]
    st = ctx.sets.get(name)
    if st is None:
        raise ctx.syntax(f"set '{name}' does not exist in this table", s.loc)
    key = a["key"]
    mask = None
    if isinstance(key, Binop) and key.op == "&" and isinstance(key.left, Sel):
        key, mask = key.left, key.right
    words = key.text.split() if isinstance(key, Sel) else []
    if len(words) != 2 or words[0] not in ("ip", "ip6") or words[1] not in ("saddr", "daddr") \
            or st.data is not None or not set(st.flags) <= {"dynamic"} or \
            st.types not in ((("ipv4_addr",), ("ip saddr",), ("ip daddr",)) if words[:1] == ["ip"]
                             else (("ipv6_addr",), ("ip6 saddr",), ("ip6 daddr",))):
        raise ctx.unsupported(f"'ct count' in set '{name}' keyed otherwise than on one masked "
                              "address of a dynamic address set", s.loc)
    fam = words[0]
    width = 32 if fam == "ip" else 128
    bits = width
    if mask is not None:
        bits = _prefix_len((ADDR4 if fam == "ip" else ADDR6)(mask), width)
        if bits is None:
            raise ctx.unsupported("'ct count' keyed on a non-prefix mask", s.loc)
    if ctx.family not in (fam, "inet"):
        raise ctx.unsupported(f"'ct count' keyed on {fam} in an {ctx.family} table", s.loc)
    cc = a["stmts"][0].args
    node = ir.ConnLimit(words[1], bits, V.dec_int(cc["count"]), cc["over"])
    ctx.connlimits.setdefault(name, []).append(s.loc)
    if ctx.family == "inet":
        return _Guarded(ir.FieldMatch("meta nfproto", ("ipv4" if fam == "ip" else "ipv6",)), node)
    return node


def _hashlimit(a, s, ctx):
    """`update @S { KEY limit rate [over] N/unit burst B packets }` on a dynamic set with a
    timeout is a token bucket per key that is forgotten after the timeout: HashLimit (named after
    the set, so rules sharing the set share buckets, as rules sharing --hashlimit-name do)."""
    name = a["set"]
    st = ctx.sets.get(name)
    if st is None:
        raise ctx.syntax(f"set '{name}' does not exist in this table", s.loc)
    lim = _limit(a["stmts"][0].args, a["stmts"][0], ctx)
    if lim.bytes:
        raise ctx.unsupported(f"a per-element byte-rate limit in set '{name}' (the IR's "
                              "per-key limits count packets)", s.loc)
    key = a["key"]
    parts = key.parts if isinstance(key, Concat) else (key,)
    # the element's own timeout wins over the set's; it needs the set's timeout flag (the
    # kernel refuses the rule otherwise: "Operation not supported")
    timeout = a.get("timeout") or st.timeout
    if a.get("timeout") and "timeout" not in st.flags and not st.timeout:
        raise ctx.syntax(f"set '{name}' has no timeout flag: its elements cannot have a "
                         "timeout", s.loc)
    if not timeout:
        # no timeout: buckets are never forgotten, which hashlimit cannot say (a set with
        # the timeout flag but no timeout of its own keeps such elements for ever too)
        if any(not isinstance(p, Sel) for p in parts):
            raise ctx.unsupported(f"a per-element limit in set '{name}' keyed on an expression",
                                  s.loc)
        return ir.SetLimit(name, tuple(p.text for p in parts), lim.rate, lim.unit, lim.burst,
                           lim.negate)
    fam = ctx.family
    if fam == "inet":
        # `ip saddr` in an inet rule only holds for IPv4 packets (nft adds that dependency):
        # the HashLimit of that family behind an explicit `meta nfproto` guard
        fields = [p.left if isinstance(p, Binop) else p for p in parts]
        fams = {f.text.split()[0] for f in fields if isinstance(f, Sel)} & {"ip", "ip6"}
        if len(fams) != 1:
            raise ctx.unsupported("per-element limits in an inet table keyed on no address (or "
                                  "on both families): hashlimit tables are per IP family",
                                  s.loc)
        fam = fams.pop()
    elif fam not in ("ip", "ip6"):
        raise ctx.unsupported(f"per-element limits in an {ctx.family} table (hashlimit tables "
                              "are per IP family)", s.loc)
    mode, masks, needs_ports = [], {}, False
    need_proto: set = set()
    width = 32 if fam == "ip" else 128
    for p in parts:
        mask = None
        if isinstance(p, Binop) and p.op == "&" and isinstance(p.left, Sel):
            mask, p = p.right, p.left
        if not isinstance(p, Sel):
            raise ctx.unsupported("a per-element limit keyed on an expression", s.loc)
        words = p.text.split()
        if p.text in ("meta nfproto", "meta protocol") and len(parts) == 1:
            continue  # a constant key: one bucket for the whole family
        if words[0] == fam and len(words) == 2 and words[1] in _HL_ADDR:
            bits = width
            if mask is not None:
                m = (ADDR4 if fam == "ip" else ADDR6)(mask)
                bits = _prefix_len(m, width)
                if bits is None:
                    raise ctx.unsupported("a per-element limit keyed on a non-prefix mask", s.loc)
            mode.append(_HL_ADDR[words[1]])
            masks[words[1]] = None if bits == width else bits
        elif p.text in _HL_PORT and mask is None:
            mode.append(_HL_PORT[p.text])
            needs_ports = True
        elif p.text in _HL_PROTO_PORT and mask is None:
            # `udp dport` in a rule that only udp reaches: hashlimit's dstport (xt_hashlimit
            # reads the ports of tcp, udp, udplite, sctp and dccp alike)
            proto, m = _HL_PROTO_PORT[p.text]
            mode.append(m)
            need_proto.add(proto)
        else:
            raise ctx.unsupported(f"a per-element limit keyed on '{p.text}'", s.loc)
    if st.size not in (None, 65535):  # (the HashLimit's set is written with size 65535)
        raise ctx.unsupported(f"a per-element limit with a timeout in set '{name}' of size "
                              f"{st.size} (the IR's hashlimit has nft's size 65535; a full set "
                              "stops the rule)", s.loc)
    ms = V.dec_time(Val(timeout, s.loc)) * 1000
    if timeout.endswith("ms") and V.parse_int(timeout[:-2]) is not None:
        ms = int(timeout[:-2])
    node = ir.HashLimit(name, lim.rate, lim.unit, lim.burst, tuple(mode), masks.get("saddr"),
                        masks.get("daddr"), lim.negate, ms or None)
    if ctx.family == "inet":
        guard = ir.FieldMatch("meta nfproto", ("ipv4" if fam == "ip" else "ipv6",))
        node = _Guarded(guard, node)
    if len(need_proto) > 1:
        raise ctx.unsupported("a per-element limit keyed on the ports of two protocols", s.loc)
    if need_proto:
        # (nft adds `meta l4proto udp` for `udp dport` in the key itself)
        node = _Guarded(ir.Proto(frozenset(need_proto)), node)
    return _NeedsProto(node, PORT_PROTOS, s.loc) if needs_ports else node


@attrs.frozen
class _Guarded:
    """A match exact only behind another one (the family guard of an inet hashlimit)."""

    guard: object
    node: object


def _prefix_len(net, width):
    if isinstance(net, ir.AddrRange) or net.prefixlen != width:
        return None
    n = int(net.network_address)
    bits = bin(n).count("1")
    return bits if n == ((1 << width) - 1) ^ ((1 << (width - bits)) - 1) else None


def _log(a, s, ctx):
    prefix = a["prefix"].text if "prefix" in a else None
    if prefix is not None and len(prefix.encode()) > 127:  # (NF_LOG_PREFIXLEN, with its NUL)
        raise ctx.syntax("log prefix longer than 127 bytes", a["prefix"].loc)
    if "group" in a:
        if "level" in a or "flags" in a:
            raise ctx.syntax("log group cannot be combined with level or flags", s.loc)
        return ir.NfLog(V.dec_int(a["group"], None, 16), prefix,
                        V.dec_int(a["snaplen"]) if "snaplen" in a else None,
                        V.dec_int(a["queue-threshold"], None, 16) if "queue-threshold" in a else None)
    if "snaplen" in a or "queue-threshold" in a:
        raise ctx.syntax("snaplen and queue-threshold need 'log group'", s.loc)
    level = None
    if "level" in a:
        lv = a["level"].text.lower()
        if lv == "audit":
            raise ctx.unsupported("log level audit", s.loc)
        if lv not in V.LOG_LEVELS:
            raise ctx.syntax(f"unknown log level '{lv}'", a["level"].loc)
        level = V.LOG_LEVELS[lv]
    names = {"tcp sequence": "tcp-sequence", "tcp options": "tcp-options", "ip options": "ip-options",
             "skuid": "uid", "ether": "macdecode"}
    flags = set()
    for f in a.get("flags", []):
        if f == "all":
            flags |= set(names.values())
        elif f in names:
            flags.add(names[f])
        else:
            raise ctx.syntax(f"unknown log flag '{f}'", s.loc)
    return ir.Log(prefix, level, frozenset(flags))


_DATA_UNITS = {k: v for k, v in _QUOTA_UNITS.items() if k != "gbytes"}  # (a limit's units)


def _limit(a, s, ctx):
    rate_text = a["rate"].text
    if "/" in rate_text:
        num, _, per = rate_text.partition("/")
    else:
        num, per = rate_text, a["per"].text if "per" in a else None
    data = None
    if "unit" in a:  # `N kbytes/second` (the JSON's rate_unit carries no time unit)
        data, slash, per2 = a["unit"].text.partition("/")
        per = per2 if slash else per
        if data not in _DATA_UNITS:
            raise ctx.syntax(f"unknown rate unit '{data}' (bytes, kbytes or mbytes)",
                             a["unit"].loc)
    n = V.parse_int(num)
    if n is None or per is None:
        raise ctx.syntax(f"invalid limit rate '{rate_text}'", a["rate"].loc)
    if n == 0:  # (the kernel refuses it: EOVERFLOW)
        raise ctx.syntax("limit rate 0: a rate must be at least 1", a["rate"].loc)
    if per not in V.UNITS:
        raise ctx.syntax(f"unknown time unit '{per}'", a["rate"].loc)
    bunit = a.get("burst_unit")
    if data is None:
        if bunit not in (None, "packets"):
            raise ctx.syntax(f"a packet rate takes a burst in packets, not {bunit}", s.loc)
        burst = V.dec_int(a["burst"]) if "burst" in a else 5
        # nft_limit: rate + burst and unit-in-ns / rate x burst in 64 bits, else EOVERFLOW
        if n + burst >= 2**64 or V.UNITS[per] * 10**9 // n * burst >= 2**64:
            raise ctx.syntax(f"limit rate {n}/{per} burst {burst}: too large for the kernel "
                             "(EOVERFLOW)", a["rate"].loc)
        return ir.Limit(n, per, burst, a["over"])
    if "burst" in a and bunit not in _DATA_UNITS:
        raise ctx.syntax(f"a byte rate takes a burst in bytes, kbytes or mbytes, not "
                         f"{bunit or 'packets'}", s.loc)
    rate = n * _DATA_UNITS[data]
    burst = V.dec_int(a["burst"]) * _DATA_UNITS[bunit] if "burst" in a else 0
    # nft_limit computes unit-in-ns x (rate + burst) in 64 bits and refuses an overflow
    if V.UNITS[per] * 10**9 * (rate + burst) >= 2**64:
        raise ctx.syntax(f"limit rate {n} {data}/{per}: rate and burst too large for the "
                         "kernel (EOVERFLOW)", a["rate"].loc)
    return ir.Limit(rate, per, burst, a["over"], bytes=True)


def _reject(a, s, ctx):
    if not a:
        return ir.Reject(None)
    fam, typ = a["family"], a["type"]
    if fam == "tcp":
        return ir.Reject("tcp-reset")
    table = {"icmp": V.ICMP_CODES, "icmpv6": V.ICMPV6_CODES,
             "icmpx": {"no-route": 0, "port-unreachable": 1, "host-unreachable": 2,
                       "admin-prohibited": 3}}.get(fam)
    if table is None:
        raise ctx.syntax(f"unknown reject family '{fam}'", s.loc)
    if typ not in table:
        n = V.parse_int(typ)
        inv = {v: k for k, v in table.items()}
        if n is None or n not in inv:
            raise ctx.syntax(f"unknown {fam} reject type '{typ}'", s.loc)
        typ = inv[n]
    # (before the default below: in inet `reject with icmp port-unreachable` leaves IPv6 alone,
    # nft adds `meta nfproto ipv4`; measured with --debug=netlink)
    node = ir.Reject(None if typ == "port-unreachable" else typ)  # (nft's default reject)
    if fam == "icmpx":
        return node
    want = {"icmp": "ip", "icmpv6": "ip6"}[fam]
    if ctx.family == "inet":
        # named with its family (icmp-/icmp6-): the same code as icmpx's for that family,
        # but written back as nft read it
        prefix = "icmp-" if fam == "icmp" else "icmp6-"
        return _FamilyReject(want, ir.Reject(prefix + typ), s.loc)
    if ctx.family != want:
        raise ctx.unsupported(f"'reject with {fam}' {in_table(ctx.family)}", s.loc)
    return node


@attrs.frozen
class _FamilyStmt:
    """A header write of one family (`ip dscp set`, `ip6 hoplimit set`) in an inet table: nft
    tests `meta nfproto <family>` right before it (--debug=netlink), unless an earlier match
    already requires that family."""

    family: str
    node: object
    loc: object


@attrs.frozen
class _FamilyReject:
    """`reject with icmp|icmpv6 ...` in an inet table: nft puts `meta nfproto <family>` in
    front of it unless an earlier match already requires that family."""

    family: str
    node: ir.Reject
    loc: object


def _queue(a, s, ctx):
    num = ir.Range(0, 0)
    if "num" in a:
        v = V.dec_int(a["num"], None, 16)
        num = v if isinstance(v, ir.Range) else ir.Range.one(v)
    fl = set(a["flags"])
    if fl - {"bypass", "fanout"}:
        raise ctx.syntax(f"unknown queue flags {sorted(fl)}", s.loc)
    return ir.Queue(num, "bypass" in fl, "fanout" in fl)


def _nat(kind, a, s, ctx):
    if a.get("family") and ctx.family in ("ip", "ip6") and a["family"] != ctx.family:
        raise ctx.syntax(f"'{kind} {a['family']}' in an {ctx.family} table (nft: conflicting "
                         f"protocols specified: {ctx.family} vs. {a['family']})", s.loc)
    flags = frozenset(a["flags"])
    if flags - {"random", "persistent", "fully-random"}:
        raise ctx.unsupported(f"nat flags {sorted(flags)}", s.loc)
    if isinstance(a.get("to"), MapLookup) and "prefix" not in a and "ports" not in a or \
            kind == "redirect" and isinstance(a.get("ports"), MapLookup):
        return _nat_map(kind, a, s, ctx)
    ports = None
    if "ports" in a:
        p = V.dec_port(a["ports"]) if isinstance(a["ports"], Val) else V.dec_port(a["ports"])
        ports = p if isinstance(p, ir.Range) else ir.Range.one(p)
    if kind in ("masquerade", "redirect"):
        if "to" in a:  # `redirect to 8080` (port without colon)
            p = V.dec_port(a["to"])
            ports = p if isinstance(p, ir.Range) else ir.Range.one(p)
        return (ir.Masquerade if kind == "masquerade" else ir.Redirect)(ports, flags)
    if "prefix" in a:
        return _netmap(kind, a, s, ctx)
    to = a.get("to")
    if to is None and ports is None:
        raise ctx.syntax(f"{kind} needs 'to ADDRESS[:PORT]'", s.loc)
    if isinstance(to, (MapLookup, Concat, Sel, SetLit)):
        raise ctx.unsupported(f"{kind} to a map, concatenation or expression", s.loc)
    addr = None
    if to is not None:
        addr, p2 = _nat_addr(to, a.get("family"), s, ctx)
        if p2 is not None:
            ports = p2
    cls = ir.Snat if kind == "snat" else ir.Dnat
    return cls((ir.NatTarget(addr, ports),), flags)


def _netmap(kind, a, s, ctx):
    """`snat ip prefix to ip saddr map { KEY : NET }` (dnat: daddr): the kernel keeps the host
    bits of the address and takes the network bits from NET (NF_NAT_RANGE_NETMAP); a packet whose
    address is outside KEY finds no element and the rule does not match.  One element is exactly
    a match on KEY (none when KEY is the whole family and the table is of that family) then
    Netmap; several elements would need a verdict per element."""
    field = "saddr" if kind == "snat" else "daddr"
    to = a.get("to")
    if not isinstance(to, MapLookup) or not isinstance(to.map, SetLit) or len(to.map.elems) != 1 \
            or "ports" in a or a["flags"] or not isinstance(to.key, Sel) \
            or to.key.text not in (f"ip {field}", f"ip6 {field}"):
        raise ctx.unsupported(f"{kind} ... prefix to anything but '{field} map {{ KEY : NET }}' "
                              "with a single element", s.loc)
    elem = to.map.elems[0]
    fam = to.key.text.split()[0]
    dec = ADDR4 if fam == "ip" else ADDR6
    if not isinstance(elem, MapElem) or isinstance(elem.key, (Concat, SetLit)):
        raise ctx.syntax("a prefix map needs 'KEY : NETWORK'", s.loc)
    key, net = dec(elem.key), dec(elem.data)
    if isinstance(net, ir.AddrRange) or (a.get("family") or fam) != fam:
        raise ctx.unsupported(f"{kind} prefix to an address range or another family", s.loc)
    whole = not isinstance(key, ir.AddrRange) and key.prefixlen == 0
    match = None if whole and ctx.family == fam else ir.Address(field, (key,))
    return _WithMatch(match, ir.Netmap(field, net))


@attrs.frozen
class _WithMatch:
    """A verdict that also restricts the packets it applies to (the match goes first)."""

    match: object
    node: object


def _tproxy(a, s, ctx):
    fam = a.get("family")
    text = a["to"].text
    addr = port = None
    if text.startswith(":"):
        port = text[1:]
    else:
        got, p = _nat_addr(a["to"], fam, s, ctx)
        if isinstance(got, ir.AddrRange) or got.num_addresses != 1:
            raise ctx.syntax("tproxy needs a single address", s.loc)
        addr = got.network_address
        port = None if p is None else str(p.lo)
        if fam is None and ctx.family == "inet":
            raise ctx.syntax("tproxy to an address in an inet table needs 'ip' or 'ip6' (nft: ip "
                             "or ip6 must be specified with address for inet tables)", s.loc)
        if fam is None:
            fam = "ip" if addr.version == 4 else "ip6"
    fam = fam or (ctx.family if ctx.family != "inet" else None)
    if fam is None:
        raise ctx.unsupported("tproxy without a family in an inet table (it serves both)", s.loc)
    if ctx.family not in ("inet", fam):
        raise ctx.syntax(f"tproxy {fam} in an {ctx.family} table", s.loc)
    n = None if port is None else V.dec_port(Val(port, s.loc))
    if isinstance(n, ir.Range):
        raise ctx.syntax("tproxy needs a single port", s.loc)
    return ir.TProxySet(fam, addr, n or None)  # port 0: the packet's own port


def _nat_map(kind, a, s, ctx):
    """`dnat ip to KEYS map { k : addr [. port], ... }`, `redirect to :tcp dport map {...}`."""
    lk = a["ports"] if kind == "redirect" else a["to"]
    key = lk.key
    keys = tuple(_key_text(p, ctx) for p in key.parts) if isinstance(key, Concat) else \
        (_key_text(key, ctx),)
    fam = a.get("family") or (ctx.family if ctx.family != "inet" else None)
    if kind == "redirect":
        fam = fam or "ip"  # ports only; the family does not matter
    if fam is None:
        raise ctx.unsupported(f"{kind} to a map without 'ip' or 'ip6' in an inet table", s.loc)
    flags = frozenset(a["flags"])
    if isinstance(lk.map, SetRef):
        return ir.NatMap(kind, fam, keys, _check_set(lk.map, ctx), (), flags)
    elems = []
    for e in lk.map.elems:
        if not isinstance(e, MapElem):
            raise ctx.syntax("a nat map needs 'key : address' elements", e.loc)
        data = e.data
        if kind == "redirect":
            p = V.dec_port(data)
            target = ir.NatTarget(None, p if isinstance(p, ir.Range) else ir.Range.one(p))
        else:
            parts = data.parts if isinstance(data, Concat) else (data,)
            if len(parts) > 2:
                raise ctx.syntax("a nat map value is an address or address . port", e.loc)
            addr, ports = _nat_addr(parts[0], fam, s, ctx)
            if len(parts) == 2:
                p = V.dec_port(parts[1])
                ports = p if isinstance(p, ir.Range) else ir.Range.one(p)
            target = ir.NatTarget(addr, ports)
        for k in _elements(e.key):
            elems.append((_decode_tuple(keys, k, ctx), target))
    elems.sort(key=lambda kv: tuple_order_key(kv[0]))
    return ir.NatMap(kind, fam, keys, None, tuple(elems), flags)


def _nat_addr(v, fam, s, ctx):
    """`1.2.3.4`, `1.2.3.4:80`, `1.2.3.4-1.2.3.9:80-90`, `[dead::1]:80`, `10.0.0.0/24`."""
    text = v.text if isinstance(v, Val) else None
    if text is None:
        return ADDR(v), None
    port = None
    if text.startswith("["):
        # `[A]`, `[A]:P`, `[A]-[B]:P`, `[A]/64`: every part counts (none may be left unread)
        hit = _BRACKETED.match(text)
        if hit is None:
            raise ctx.syntax(f"malformed IPv6 nat address '{text}'", v.loc)
        lo, hi, plen, port = hit.groups()
        addr_text = lo + (f"-{hi}" if hi else "") + (plen or "")
    elif text.count(":") == 1:
        addr_text, port = text.split(":")
    else:
        addr_text = text
    addr = ADDR(Val(addr_text, v.loc))
    want = {"ip": 4, "ip6": 6}.get(fam or ctx.family)
    if want and _version(addr) != want:
        raise ctx.syntax(f"type mismatch: {'IPv4' if want == 4 else 'IPv6'} nat address expected",
                         v.loc)
    if isinstance(addr, ir.AddrRange) or addr.num_addresses == 1:
        pass
    ports = None
    if port:
        p = V.dec_port(Val(port, v.loc))
        ports = p if isinstance(p, ir.Range) else ir.Range.one(p)
    if not isinstance(addr, ir.AddrRange) and addr.num_addresses == 1:
        addr = addr  # a single host network
    return addr, ports


_BRACKETED = re.compile(r"^\[([^\]]+)\](?:-\[([^\]]+)\])?(/\d+)?(?::([^:\[\]]+))?$")


def _version(a) -> int:
    return a.version if hasattr(a, "version") else a.lo.version


_NO_FIELDSET = ("ct helper", "ct timeout", "ct expectation")  # set from stateful objects


# the meta and ct keys the kernel lets a rule write (nft_meta_set_init, nft_ct_set_init); any
# other is "Operation not supported" when nft loads the rule
_WRITABLE = ("meta mark", "meta priority", "meta pkttype", "meta nftrace", "meta secmark",
             "meta broute",
             "ct mark", "ct label", "ct zone", "ct event", "ct secmark", "ct helper",
             "ct timeout", "ct expectation")
_CT_EVENTS = ("new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark",
              "seqadj", "secmark", "label")


def _set_stmt(a, s, ctx):
    text = sel_text(a["lhs"], ctx)
    if text in ("ct original zone", "ct reply zone"):  # (the kernel takes them)
        raise ctx.unsupported(f"'{text} set': a conntrack zone of one direction (the IR's "
                              "zones hold for both directions)", s.loc)
    if text.split()[0] in ("meta", "ct") and text not in _WRITABLE:
        raise ctx.syntax(f"'{text} set': the kernel lets no rule write {text} (nft: Could "
                         "not process rule: Operation not supported)", s.loc)
    if text in ("meta secmark", "ct secmark") and isinstance(a["value"], Val):
        raise ctx.syntax(f"'{text} set' to a constant (nft: {text} must not be set to constant "
                         "value; it takes a secmark object)", s.loc)
    if text == "meta nftrace" and isinstance(a["value"], Val) and a["value"].text not in ("0", "1"):
        raise ctx.syntax(f"meta nftrace set {a['value'].text}: value exceeds valid range 0-1",
                         a["value"].loc)
    if text == "ct event":
        words = a["value"].items if isinstance(a["value"], FlagList) else (a["value"],)
        for w in words:
            if not isinstance(w, Val) or w.text not in _CT_EVENTS:
                raise ctx.syntax(f"could not parse conntrack event bits "
                                 f"'{getattr(w, 'text', '?')}' (nft: {', '.join(_CT_EVENTS)})",
                                 getattr(w, "loc", s.loc))
    try:
        return _set_dedicated(a, s, ctx)
    except Unsupported:
        if text in _NO_FIELDSET:
            raise
        return ir.FieldSet(text, value_expr(a["value"], text, ctx))


def value_expr(v, target: str, ctx):
    """A statement's value as IR: an nft value of `target`'s type, FieldRef, BitOp, MapValue."""
    if isinstance(v, Sel):
        return ir.FieldRef(v.text)
    if isinstance(v, FlagList) and any(isinstance(x, (Sel, Binop)) for x in v.items):
        e = value_expr(v.items[0], target, ctx)
        for x in v.items[1:]:
            e = ir.BitOp("|", e, value_expr(x, target, ctx))
        return e
    if isinstance(v, Binop):
        left = value_expr(v.left, target, ctx)
        # a constant operand has the type of the field it combines with (`ip dscp & lephb`)
        typed = v.left.text if isinstance(v.left, Sel) and v.op in ("&", "|", "^") else None
        if typed == "tcp flags" and not isinstance(v.right, (Sel, Binop)):
            right = _flag_bits(v.right, ctx)
        elif isinstance(v.right, FlagList) and not any(isinstance(x, (Sel, Binop))
                                                       for x in v.right.items):
            right = 0
            for x in v.right.items:
                right |= _int_value(decoder_for(typed or target)(x), x, ctx)
        elif isinstance(v.right, (Sel, Binop, FlagList)):
            right = value_expr(v.right, target, ctx)
        elif typed is not None:
            right = _int_value(decoder_for(typed)(v.right), v.right, ctx)
        else:
            right = V.dec_int(v.right)
        if isinstance(left, int) and isinstance(right, int):  # `0x0f << 1` is 0x1e
            return _fold(v.op, left, right)
        return ir.BitOp(v.op, left, right)
    if isinstance(v, MapLookup):
        key = v.key
        keys = tuple(_key_text(p, ctx) for p in key.parts) if isinstance(key, Concat) else \
            (_key_text(key, ctx),)
        if isinstance(v.map, SetRef):
            return ir.MapValue(keys, _check_set(v.map, ctx))
        dec = decoder_for(target)
        elems = []
        for e in v.map.elems:
            if not isinstance(e, MapElem):
                raise ctx.syntax("a map needs 'key : value' elements", e.loc)
            val = dec(e.data)
            for k in _elements(e.key):
                elems.append((_decode_tuple(keys, k, ctx), val))
        return ir.MapValue(keys, None, tuple(sorted(elems, key=lambda kv: tuple_order_key(kv[0]))))
    if isinstance(v, (SetLit, SetRef, Concat)):
        raise ctx.syntax(f"'{target} set' needs a single value", v.loc)
    if target == "tcp flags":
        return _flag_bits(v, ctx)
    return decoder_for(target)(v)


def _fold(op, a, b) -> int:
    return {"&": a & b, "|": a | b, "^": a ^ b, "<<": (a << b) & 0xFFFFFFFF, ">>": a >> b}[op]


def _key_text(p, ctx) -> str:
    """A map key part: a field (`iifname` alone is `meta iifname`)."""
    if isinstance(p, Binop) and isinstance(p.left, Sel) and isinstance(p.right, Val):
        raise ctx.unsupported("a map keyed on a masked field", p.loc)
    if isinstance(p, Val) and not p.quoted and p.text in META_UNQUALIFIED:
        return f"meta {p.text}"
    return sel_text(p, ctx)


def _int_value(x, v, ctx):
    if not isinstance(x, int):
        raise ctx.syntax(f"expected a number, got '{getattr(v, 'text', v)}'", v.loc)
    return x


def _set_dedicated(a, s, ctx):
    lhs, value = a["lhs"], a["value"]
    text = sel_text(lhs, ctx)
    if text in ("meta mark", "ct mark"):
        return _set_mark(text.split()[0], value, s, ctx)
    if text == "ct helper":
        if not isinstance(value, Val):
            raise ctx.unsupported("'ct helper set' from a map (helper objects per element)", s.loc)
        name = _plain(value, ctx)
        obj = ctx.helpers.get(name)
        if obj is None:
            raise ctx.syntax(f"ct helper object '{name}' is not declared in this table", s.loc)
        return _NeedsProto(ir.CtHelperSet(obj[0], template=False), obj[1], s.loc)
    if text == "ct zone":
        return ir.CtZoneSet(V.dec_int(value, None, 16))
    if text == "meta nftrace":
        if V.dec_int(value) != 1:
            raise ctx.unsupported("meta nftrace set 0", s.loc)
        return ir.Trace()
    if not isinstance(value, Val) and text != "tcp option maxseg size":
        raise ctx.unsupported(f"'{text} set' from an expression", s.loc)
    fam = text.split()[0]
    if text in ("ip dscp", "ip6 dscp") and ctx.family in (fam, "inet"):
        node = ir.SetDscp(V.dec_int(value, V.DSCP, 6))
        return _FamilyStmt(fam, node, s.loc) if ctx.family == "inet" else node
    if text in ("ip ttl", "ip6 hoplimit") and ctx.family in (fam, "inet"):
        node = ir.SetTtl(fam, "set", V.dec_int(value, None, 8))
        return _FamilyStmt(fam, node, s.loc) if ctx.family == "inet" else node
    if text == "tcp option maxseg size":
        if isinstance(value, Sel) and value.text == "rt mtu":
            return ir.TcpMss(None)
        return ir.TcpMss(V.dec_int(value, None, 16))
    raise ctx.unsupported(f"nft statement '{text} set'", s.loc)


def _plain(value, ctx) -> str:
    if not isinstance(value, Val):
        raise ctx.syntax("expected a name", value.loc)
    return value.text


def _qualified(v):
    """`mark` alone in a value is `meta mark` (nft's unqualified meta keys), also as the left
    side of `mark & 0xff`."""
    if isinstance(v, Val) and not v.quoted and v.text in META_UNQUALIFIED:
        return Sel(f"meta {v.text}", v.loc)
    if isinstance(v, Binop):
        return Binop(_qualified(v.left), v.op, v.right, v.loc)
    if isinstance(v, FlagList) and v.items:
        return FlagList((_qualified(v.items[0]),) + tuple(v.items[1:]), v.loc)
    return v


def _set_mark(kind, value, s, ctx):
    value = _qualified(value)
    if isinstance(value, Binop) and value.op in ("<<", ">>") and isinstance(value.right, Val):
        # `(EXPR) >> N`: xt_CONNMARK's shift modes (fwc's own output of them)
        n = V.dec_int(value.right)
        if not 0 <= n <= 31:
            raise ctx.unsupported(f"a mark shifted by {n}", s.loc)
        inner = _set_mark(kind, value.left, s, ctx)
        if inner.shift:
            raise ctx.unsupported("this shifted mark expression", s.loc)
        return attrs.evolve(inner, shift=n if value.op == "<<" else -n)
    other = "ct" if kind == "meta" else "meta"
    if isinstance(value, Val):
        return ir.SetMark(kind, V.dec_int(value))
    if isinstance(value, Sel) and value.text == f"{other} mark":
        return ir.CopyMark(kind)
    if isinstance(value, FlagList) and isinstance(value.items[0], (Sel, Binop)):
        e = value.items[0]  # `SRC | A | B` was read as a flag list
        for x in value.items[1:]:
            e = Binop(e, "|", x, value.loc)
        value = e
    if isinstance(value, Binop):
        # unwind `SRC (& A) (^ or | B)` into a single and/xor pair
        ops = []
        e = value
        while isinstance(e, Binop):
            ops.append((e.op, e.right))
            e = e.left
        ops.reverse()
        if not isinstance(e, Sel) or e.text not in ("meta mark", "ct mark"):
            raise ctx.unsupported("setting a mark from this expression", s.loc)
        and_m, xor_v, or_v = 0xFFFFFFFF, 0, 0
        for op, operand in ops:
            if not isinstance(operand, Val):
                raise ctx.unsupported("a mark expression combining two fields", s.loc)
            n = V.dec_int(operand)
            if op == "&":
                and_m &= n; xor_v &= n; or_v &= n
            elif op == "^":
                xor_v ^= n
            elif op == "|":
                if xor_v:
                    raise ctx.unsupported("mark expression mixing xor and or", s.loc)
                or_v |= n
            else:
                raise ctx.unsupported(f"mark expression with '{op}'", s.loc)
        if xor_v and or_v:
            raise ctx.unsupported("mark expression mixing xor and or", s.loc)
        if e.text == f"{kind} mark":  # new = (old & A) | B  or  (old & A) ^ B
            if or_v:
                return ir.SetMark(kind, or_v, (~and_m | or_v) & 0xFFFFFFFF)
            return ir.SetMark(kind, xor_v, ~and_m & 0xFFFFFFFF)
        if xor_v or or_v:
            raise ctx.unsupported("copying a mark with or/xor", s.loc)
        return ir.CopyMark(kind, src_mask=and_m, dst_mask=0xFFFFFFFF)
    raise ctx.unsupported(f"setting {kind} mark from this expression", s.loc)


# --------------------------------------------------------------------------- one rule


@attrs.frozen
class _NeedsProto:
    """A statement exact only when the rule's matches already restrict the layer-4 protocol:
    a ct helper object assigns its helper only to connections of its own protocol."""

    node: object
    proto: int
    loc: object


_ECHO_FIELDS = {"icmp id": ("icmp type", (0, 8)), "icmp sequence": ("icmp type", (0, 8)),
                "icmp mtu": ("icmp type", (3,)),
                "icmpv6 id": ("icmpv6 type", (128, 129)),
                "icmpv6 sequence": ("icmpv6 type", (128, 129)),
                "icmpv6 mtu": ("icmpv6 type", (2,)), "icmpv6 daddr": ("icmpv6 type", (137,)),
                "icmpv6 taddr": ("icmpv6 type", (130, 131, 132, 135, 136, 137))}


def _icmp_dependency(node, matches, ctx=None, loc=None):
    """nft compiles `icmp id 22` as `icmp type { echo-reply, echo-request } icmp id 22` (the
    field exists only in echo messages) and lists it so: the IR carries that restriction.  A
    type test before it that excludes those types is nft's "incompatible icmp match"."""
    expr = node.expr if isinstance(node, ir.FieldMatch) else (
        node.keys[0] if isinstance(node, ir.SetMatch) and len(node.keys) == 1 else None)
    dep = _ECHO_FIELDS.get(expr)
    if dep is None:
        return None
    fam = "ip" if dep[0] == "icmp type" else "ip6"
    for m in matches:
        if ctx is not None and isinstance(m, ir.Icmp) and m.family == fam and not m.negate and \
                m.type is not None and m.type not in dep[1]:
            raise ctx.syntax(f"incompatible icmp match: the rule tests type {m.type}, "
                             f"'{expr}' needs {' or '.join(map(str, dep[1]))}", loc)
    for m in matches:
        if isinstance(m, ir.Icmp) and m.family == fam or \
                isinstance(m, ir.FieldMatch) and m.expr == dep[0] or \
                isinstance(m, ir.SetMatch) and dep[0] in m.keys:
            return None
    if len(dep[1]) == 1:
        return ir.Icmp(fam, dep[1][0])
    return ir.FieldMatch(dep[0], dep[1])


def _implied_family(m):
    """The family a match already requires in an inet table (nft adds the `meta nfproto` guard
    for these itself), or None; an explicit guard does not count (it is what may be dropped)."""
    return None if ir.family_test(m) is not None else ir.match_family(m)


def _drop_implied_guards(matches, ctx) -> list:
    if ctx.family in ir.L2_FAMILIES:
        return _drop_l2_guards(matches, ctx)
    implied = {_implied_family(m) for m in matches} - {None}
    return [m for m in matches if ir.family_test(m) not in implied]


def _l2_guard(m, family):
    """The link-layer test nft 1.0.6 compiles in front of non-negated match `m` in a bridge or
    netdev table (measured with --debug=netlink): `ip saddr` gets `meta protocol ip`, `icmp
    type` gets `ether type ip` in bridge and `meta protocol ip` in netdev, `vlan id` gets
    `ether type vlan`.  None: no such test."""
    if m.negate:
        return None
    if isinstance(m, ir.Address) and len({ir.ip_family(a) for a in m.values}) == 1:
        return ("meta protocol", ir.ip_family(m.values[0]))
    word = m.expr.split()[0] if isinstance(m, ir.FieldMatch) else None
    if word in ("ip", "ip6"):
        return ("meta protocol", word)
    if word == "vlan":  # `vlan id 5` gets `ether type vlan` (both families)
        return ("ether type", "vlan")
    fam = m.family if isinstance(m, ir.Icmp) else \
        {"icmp": "ip", "icmpv6": "ip6"}.get(word) if word else None
    if fam is None:
        return None
    return ("ether type" if family == "bridge" else "meta protocol", fam)


def _drop_l2_guards(matches, ctx) -> list:
    """An explicit test equal to the one nft adds anyway is the same rule (nft lists it once)."""
    if ctx.family == "arp":
        return matches  # (not measured there)
    implied = {_l2_guard(m, ctx.family) for m in matches} - {None}
    out = []
    for m in matches:
        if isinstance(m, ir.FieldMatch) and m.op == "eq" and not m.negate and m.mask is None \
                and m.xor is None and len(m.values) == 1 and (m.expr, m.values[0]) in implied:
            continue
        out.append(m)
    return out


def _always_true(node, ctx) -> bool:
    """`meta protocol ip` / `meta nfproto ipv4` in an ip table holds for every packet it sees."""
    return ir.family_test(node) == ctx.family


def implies_proto(matches, proto) -> bool:
    """The matches require layer-4 protocol `proto` (an int), or one of `proto` (a set)."""
    if not isinstance(proto, int):
        return any(implies_proto(matches, p) for p in proto)
    for m in matches:
        if isinstance(m, ir.Proto) and not m.negate and m.protos == {proto}:
            return True
        if isinstance(m, ir.Port) and ir.L4_PROTOS.get(m.proto) == proto:
            return True
        if isinstance(m, (ir.TcpFlags, ir.TcpOption)) and proto == 6:
            return True
    return False


def matches_after_vmap(stmts, st) -> bool:
    return False


_EXTHDR_FIELDS = {"exthdr": None, "rt0": None, "rt2": None, "srh": None,
                  "rt": {"type", "seg-left", "hdrlength", "nexthdr", "reserved"},
                  "frag": {"more-fragments", "id", "frag-off", "reserved", "reserved2", "nexthdr"},
                  "hbh": {"nexthdr", "hdrlength"}, "dst": {"nexthdr", "hdrlength"},
                  "mh": {"type", "nexthdr", "hdrlength", "checksum", "reserved"}}


def _sels(node):
    if isinstance(node, Sel):
        yield node
    elif isinstance(node, (list, tuple)):
        for x in node:
            yield from _sels(x)
    elif isinstance(node, dict):
        for x in node.values():
            yield from _sels(x)
    elif attrs.has(type(node)):
        for f in attrs.fields(type(node)):
            yield from _sels(getattr(node, f.name))


def check_family_fields(st, ctx: Ctx) -> None:
    """What nft 1.0.6 refuses outside inet tables: `meta nfproto` (only useful in inet); in an
    ip or ip6 table also the other family's header fields ("conflicting protocols"), and in an
    ip table IPv6 extension headers ("cannot use exthdr with ip")."""
    other = {"ip": "ip6", "ip6": "ip"}.get(ctx.family)
    for sel in _sels(st):
        words = sel.text.split()
        if other is not None and words[0] == other:
            raise ctx.syntax(f"'{sel.text}' in an {ctx.family} table (nft: conflicting protocols "
                             f"specified: {ctx.family} vs. {other})", sel.loc)
        if words[:2] == ["meta", "nfproto"]:
            raise ctx.syntax(f"meta nfproto {in_table(ctx.family)} (nft: it is only useful in "
                             "the inet family)", sel.loc)
        if ctx.family == "ip" and words[0] in _EXTHDR_FIELDS and (
                _EXTHDR_FIELDS[words[0]] is None or words[-1] in _EXTHDR_FIELDS[words[0]]):
            raise ctx.syntax(f"'{sel.text}' in an ip table (an IPv6 extension header; nft: "
                             "cannot use exthdr with ip)", sel.loc)


_AFTER_MATCH_MSG = "a match after a statement"
# statements that change nothing a match can read: a rule may go on matching after them
_OBSERVING = (ir.Log, ir.NfLog, ir.Counter, ir.NamedCounter)


def lower_rules(stmts: list, comment, loc, ctx: Ctx) -> list[ir.Rule]:
    """The IR rules of one nft rule.  A match after a statement (`log prefix "x" limit rate
    3/second drop`, `counter ip saddr @bad drop`) becomes two rules: the matches before the
    statements with those statements, then the same matches with the rest.  Exact when the
    repeated matches keep no state and the statements only observe (log, counter)."""
    try:
        return [lower_rule(stmts, comment, loc, ctx)]
    except Unsupported as e:
        if not e.message.startswith(_AFTER_MATCH_MSG):
            raise
        err = e
    is_match = [_is_match_ast(st) for st in stmts]
    cut = next((i for i, m in enumerate(is_match) if m and not all(is_match[:i])), None)
    if cut is None:
        raise err
    head = lower_rule(stmts[:cut], comment, loc, ctx)
    lead = stmts[:is_match.index(False)]  # the matches before the first statement
    if lead and _payload_rel(lead[-1]) and _payload_rel(stmts[cut]):
        # nft may merge header-field compares of one rule across a counter or log into one
        # wider compare before or after it (`tcp sport 1 counter tcp dport 2` counts only
        # packets to port 2, `ether saddr X log ether type Y` logs every packet): the split
        # form could count or log otherwise
        raise err
    if head.verdict is not None or not all(isinstance(x, _OBSERVING) for x in head.statements) \
            or any(isinstance(m, ir.STATEFUL_MATCHES) or _reads_numgen(m) for m in head.matches):
        raise err
    return [head] + lower_rules(lead + list(stmts[cut:]), comment, loc, ctx)


def _payload_rel(st) -> bool:
    """A header-field comparison (`ip daddr 10.0.0.1`), which nft may merge with its neighbour."""
    lhs = st.lhs if isinstance(st, Rel) else None
    return isinstance(lhs, Sel) and lhs.text.split()[0] in PAYLOAD_PROTOS | {"ether", "vlan",
                                                                            "arp"}


def _is_match_ast(st) -> bool:
    """Does this parsed piece of a rule lower to a match (see lower_stmt)?"""
    if isinstance(st, Rel):
        return True
    if not isinstance(st, Stmt):
        return False
    if st.kind in ("limit", "ct count", "quota"):
        return True
    inner = st.args.get("stmts", ()) if st.kind == "setupdate" else ()
    return len(inner) == 1 and isinstance(inner[0], Stmt) and \
        (st.args["op"], inner[0].kind) in (("update", "limit"), ("add", "ct count"))


def _reads_numgen(m) -> bool:
    keys = (m.expr,) if isinstance(m, ir.FieldMatch) else \
        m.keys if isinstance(m, ir.SetMatch) else ()
    return any(k.startswith("numgen") for k in keys)


_TRANSPORT_PAYLOADS = ("tcp ", "udp ", "udplite ", "sctp ", "dccp ")
_PROTO_SELECTORS = ("meta l4proto", "ip protocol", "ip6 nexthdr")


def _nat_map_needs_transport(v) -> bool:
    """A NAT map that maps ports and whose key brings no transport protocol: nft refuses it
    without a transport match before it (a redirect's key never counts; measured with nft -c)."""
    if not isinstance(v, ir.NatMap):
        return False
    if any(k.startswith(_TRANSPORT_PAYLOADS) or (k in _PROTO_SELECTORS and v.kind != "redirect")
           for k in v.keys):
        return False
    return v.kind == "redirect" or any(isinstance(e, tuple) and len(e) == 2 and
                                       isinstance(e[1], ir.NatTarget) and e[1].ports is not None
                                       for e in v.elements)


def _redirect_key_protocol(v: ir.NatMap, matches: list, statements: list, ctx, loc):
    protos = {ir.L4_PROTOS[k.split()[0]] for k in v.keys if k.startswith(_TRANSPORT_PAYLOADS)}
    if len(protos) != 1:
        return v  # (refused just after: no transport protocol)
    if statements:
        raise ctx.unsupported("a redirect map after a statement without a transport protocol "
                              "match (its key's protocol is a match the IR evaluates before "
                              "statements)", loc)
    matches.append(ir.Proto(frozenset(protos)))
    return v


def _sets_transport(st) -> bool:
    """Whether a match gives nft's rule a transport protocol, as a NAT port mapping needs."""
    if not isinstance(st, Rel):
        return False
    if isinstance(st.lhs, Concat):  # only a transport header field among the parts counts
        return any(getattr(p.left if isinstance(p, Binop) else p, "text", "").startswith(
            _TRANSPORT_PAYLOADS) for p in st.lhs.parts)
    k = st.lhs.left if isinstance(st.lhs, Binop) else st.lhs
    text = getattr(k, "text", "")
    # a transport header field brings its protocol whatever the comparison (`udp dport !=
    # 22`); a protocol test only when it names the protocol (`meta l4proto != tcp` does not)
    return text.startswith(_TRANSPORT_PAYLOADS) or (text in _PROTO_SELECTORS and st.op != "!=")


_CT_ADDR_NOFAM = re.compile(r"^ct (original|reply) (saddr|daddr)$")


def _check_ct_address_keys(stmts: list, ctx: Ctx) -> None:
    """`ct original saddr` as part of a concatenation or as a map's key has no type without
    its family word, in any table (nft: specify either ip or ip6 for address matching)."""
    def keys_of(x):
        if isinstance(x, MapLookup):
            yield from (x.key.parts if isinstance(x.key, Concat) else (x.key,))
        elif isinstance(x, Concat):
            yield from x.parts
    for st in stmts:
        cands = []
        if isinstance(st, Rel):
            cands += list(keys_of(st.lhs)) + list(keys_of(st.rhs))
        elif isinstance(st, Stmt):
            for v in st.args.values():
                cands += list(keys_of(v))
        for k in cands:
            k = k.left if isinstance(k, Binop) else k
            if isinstance(k, Sel) and _CT_ADDR_NOFAM.match(k.text) and k.family is None:
                raise ctx.syntax(f"'{k.text}' in a concatenation or map key needs its family "
                                 f"(`ct {k.text.split()[1]} ip {k.text.split()[2]}`; nft: "
                                 "specify either ip or ip6 for address matching)", k.loc)


def _check_ct_address_family(stmts: list, ctx: Ctx) -> None:
    """In an inet table nft 1.0.6 refuses `ct original saddr` unless an earlier match gives the
    rule its network protocol (`meta nfproto ipv4`, `ip saddr ...`): "cannot determine ip
    protocol version"."""
    known = nat_known = False  # (a negated `ip saddr !=` is enough for nat: measured)
    for st in stmts:
        if isinstance(st, Stmt) and st.kind in ("snat", "dnat") and "to" in st.args and \
                "family" not in st.args and not nat_known and not isinstance(st.args["to"],
                                                                          MapLookup):
            raise ctx.syntax(f"{st.kind} to an address in an inet table needs the family "
                             f"(`{st.kind} ip to ...`, or a match such as `ip daddr` or `meta "
                             "nfproto ipv4` before it; nft: ip or ip6 must be specified with "
                             "address for inet tables)", st.loc)
        if not isinstance(st, Rel):
            continue
        keys = [k.left if isinstance(k, Binop) else k
                for k in (st.lhs.parts if isinstance(st.lhs, Concat) else (st.lhs,))]
        texts = [getattr(k, "text", "") for k in keys]
        if not known and "rt nexthop" in texts:
            raise ctx.syntax("'rt nexthop' in an inet table needs the family first (`rt ip "
                             "nexthop`, or `meta nfproto ipv4` before it; nft: cannot determine "
                             "ip protocol version)", st.loc)
        if not known and any(_CT_ADDR_NOFAM.match(t) and getattr(k, "family", None) is None
                             for t, k in zip(texts, keys)):
            raise ctx.syntax(f"'{next(t for t in texts if _CT_ADDR_NOFAM.match(t))}' in an inet "
                             "table needs the family first (`ct original ip saddr`, or `meta "
                             "nfproto ipv4` before it; nft: cannot determine ip protocol "
                             "version)", st.loc)
        if any(t.startswith(("ip ", "ip6 ", "icmp ", "icmpv6 ")) or
               t in ("meta nfproto", "meta protocol") for t in texts):
            nat_known = True
            known = known or st.op != "!="


def lower_rule(stmts: list, comment, loc, ctx: Ctx) -> ir.Rule:
    matches, statements, verdict = [], [], None
    if comment is not None and len(comment.encode()) > 128:  # (NFTNL_UDATA_COMMENT_MAXLEN)
        raise ctx.syntax("comment longer than 128 bytes", loc)
    if ctx.family == "inet":
        _check_ct_address_family(stmts, ctx)
    _check_ct_address_keys(stmts, ctx)
    if ctx.family != "inet":
        for st in stmts:
            check_family_fields(st, ctx)
    for st in stmts:
        if isinstance(verdict, ir.VerdictMap):
            raise ctx.unsupported("a statement after a verdict map (reached only when no element "
                                  "matches)", st.loc)
        if verdict is not None:
            raise ctx.syntax("statement after the rule's verdict", st.loc)
        if isinstance(st, Rel):
            kind, node = "match", lower_rel(st, ctx)
        elif isinstance(st, VerdictS):
            kind, node = "verdict", lower_verdict(st, ctx)
        elif isinstance(st, VmapS):
            kind, node = "verdict", lower_vmap(st, ctx)
        else:
            kind, node = lower_stmt(st, ctx)
        if verdict is not None or (isinstance(st, Stmt) and matches_after_vmap(stmts, st)):
            pass
        if ctx.family == "arp" and kind in ("match", "statement"):
            from fwc.frontends.nft_build import arp_conflict
            bad = arp_conflict(node.node if isinstance(node, _NeedsProto) else node)
            if bad is not None:
                raise ctx.syntax(f"'{bad}' in an arp table (an ARP packet has no such header; "
                                 "nft: conflicting protocols)", st.loc)
        if kind == "match" and _always_true(node, ctx):
            continue
        if kind == "match" and not statements:
            dep = _icmp_dependency(node, matches, ctx, st.loc)
            if dep is not None:
                matches.append(dep)
        if kind == "match":
            if isinstance(node, _NeedsProto):
                if not implies_proto(matches, node.proto):
                    raise ctx.unsupported("a per-element limit keyed on ports without a match on "
                                          "one port protocol", node.loc)
                node = node.node
            while isinstance(node, _Guarded):
                if node.guard not in matches and not statements:  # (else refused just below)
                    matches.append(node.guard)
                node = node.node
            if isinstance(node, ir.FieldMatch) and node.expr == "ct label" and \
                    node.op == "eq" and len(node.values) == 1 and isinstance(node.values[0], int):
                node = attrs.evolve(node, op="any")  # a label is a bit: nft tests that bit
            if statements and _label_test_after_set(statements[-1], node):
                # `ct label set N ct label N`: xt_connlabel --set, fwc's own form of it
                statements.pop()
                node = ir.ConnLabelSet(node.values[0])
            if statements:
                raise ctx.unsupported(_AFTER_MATCH_MSG + " (the IR evaluates all matches "
                                      "before statements; fwc splits the rule in two only "
                                      "after log or counter and before stateless matches)",
                                      st.loc)
            if ctx.family == "inet":
                _check_family_conflict(node, matches, ctx, st.loc)
            matches.append(node)
        elif kind == "statement":
            if isinstance(node, ir.TProxySet):
                _check_tproxy(node, matches, stmts[:stmts.index(st)], ctx, st.loc)
            if isinstance(node, _FamilyStmt):
                node = _family_stmt(node, matches, statements, ctx)
            if isinstance(node, _NeedsProto):
                if not implies_proto(matches, node.proto):
                    raise ctx.unsupported("'ct helper set' without a match on the helper object's "
                                          "protocol (the object assigns only to that protocol)",
                                          node.loc)
                node = node.node
            statements.append(node)
        else:
            if isinstance(node, _WithMatch):
                if node.match is not None:
                    if statements:
                        raise ctx.unsupported("a prefix-map nat after a statement (its key is a "
                                              "match the IR evaluates before statements)", st.loc)
                    matches.append(node.match)
                node = node.node
            if isinstance(node, _FamilyReject):
                node = _family_reject(node, matches, ctx)
            if isinstance(node, ir.NatMap) and node.kind == "redirect" and \
                    not any(_sets_transport(x) for x in stmts[:stmts.index(st)]):
                # newer nft takes the protocol from the key (`redirect to :tcp dport map`, ok in
                # upstream's tests), 1.0.6 wants it matched first: the key's match, explicit
                node = _redirect_key_protocol(node, matches, statements, ctx, st.loc)
            if (ir.nat_maps_ports(node) or _nat_map_needs_transport(node)) and \
                    not any(_sets_transport(x) for x in stmts[:stmts.index(st)]):
                raise ctx.syntax("a NAT port mapping needs a transport protocol match before it "
                                 "(nft: transport protocol mapping is only valid after transport "
                                 "protocol match)", st.loc)
            verdict = node
    statements, verdict = _tproxy_verdict(statements, verdict)
    matches = _ct_mark_read_guard(matches, statements, verdict, ctx, loc)
    matches = _drop_implied_guards(matches, ctx)
    if verdict == ir.Reject("tcp-reset") and any(
            isinstance(m, ir.Proto) and not m.negate and 6 not in m.protos for m in matches):
        raise ctx.syntax("reject with tcp reset in a rule for another protocol (nft: you cannot "
                         "use tcp reset with this protocol)", loc)
    if verdict == ir.Reject("tcp-reset") and not statements and not implies_proto(matches, 6):
        matches.insert(0, ir.Proto(frozenset({6})))  # nft restricts `reject with tcp reset` to tcp
    return ir.Rule(tuple(matches), tuple(statements), verdict, comment, loc)


_FAM_NAME = {"ip": "IPv4", "ip6": "IPv6"}


def _family_stmt(fs: _FamilyStmt, matches: list, statements: list, ctx):
    """The statement of an inet rule, with the family test nft puts right before it made a
    match (matches run before statements in the IR: exact only when no statement precedes)."""
    implied = {ir.match_family(m) for m in matches} - {None}
    if implied - {fs.family}:
        raise ctx.syntax(f"conflicting protocols: an {_FAM_NAME[fs.family]} header write in a "
                         f"rule for {_FAM_NAME[sorted(implied)[0]]} packets (nft: conflicting "
                         "protocols specified)", fs.loc)
    if fs.family not in implied:
        if statements:
            raise ctx.unsupported(f"an {_FAM_NAME[fs.family]} header write after another "
                                  "statement in an "
                                  "inet table (nft tests the packet's family between the two; "
                                  f"put a `meta nfproto {'ipv4' if fs.family == 'ip' else 'ipv6'}` "
                                  "match first)", fs.loc)
        matches.append(ir.FieldMatch("meta nfproto", ("ipv4" if fs.family == "ip" else "ipv6",)))
    return fs.node


def _family_reject(fr: _FamilyReject, matches: list, ctx) -> ir.Reject:
    """The reject of an inet rule, with the family guard nft adds made explicit in `matches`."""
    implied = {ir.match_family(m) for m in matches} - {None}
    kw = "icmp" if fr.family == "ip" else "icmpv6"
    if implied - {fr.family}:
        raise ctx.syntax(f"'reject with {kw}' in a rule for {sorted(implied)[0]} packets (nft: "
                         "conflicting protocols)", fr.loc)
    if fr.family not in implied:
        # first, as nft 1.0.6 puts it (--debug=netlink): before a limit, and before statements
        matches.insert(0, ir.FieldMatch("meta nfproto",
                                        ("ipv4" if fr.family == "ip" else "ipv6",)))
    return fr.node


def _reads_ct_mark(st) -> bool:
    """A statement whose value reads `ct mark` (nft stops the rule there without an entry)."""
    if isinstance(st, ir.CopyMark):
        return st.to == "meta"
    if isinstance(st, ir.SetMark):
        return st.kind == "ct" and st.mask != 0xFFFFFFFF
    return False


def _ct_mark_read_guard(matches: list, statements: list, verdict, ctx, loc) -> list:
    """nft's `ct mark` read stops the rule for a packet without a conntrack entry, so what
    follows it (statements, verdict) does not run; xt's CONNMARK, which the IR nodes state,
    just does nothing.  When the read is the first statement, the exact IR is the rule with
    'has a conntrack entry' added to its matches; later, it is refused."""
    reads = [i for i, st in enumerate(statements) if _reads_ct_mark(st)]
    if not reads or (reads == [len(statements) - 1] and verdict in (None, ir.Continue())):
        return matches  # nothing after the read: the break and the no-op look the same
    if reads[0] != 0:
        raise ctx.unsupported("reading ct mark after another statement (nft stops the rule "
                              "there for packets without conntrack)", loc)
    guard = ir.CtState(frozenset({"INVALID", "UNTRACKED"}), negate=True)
    return matches if guard in matches else matches + [guard]


def _label_test_after_set(stmt, match) -> bool:
    return (isinstance(stmt, ir.FieldSet) and stmt.expr == "ct label" and
            isinstance(match, ir.FieldMatch) and match.expr == "ct label" and
            match.op == "any" and not match.negate and len(match.values) == 1 and
            isinstance(stmt.value, int) and match.values[0] == stmt.value)


def _rhs_versions(rhs) -> set:
    """The IP versions of the address literals in a right-hand side."""
    import ipaddress
    out = set()
    items = rhs.elems if isinstance(rhs, SetLit) else (rhs,)
    for x in items:
        for v in ((x.lo, x.hi) if isinstance(x, RangeV) else (x.base,) if isinstance(x, PrefixV)
                  else (x,)):
            if isinstance(v, Val):
                try:
                    out.add(ipaddress.ip_network(v.text, strict=False).version)
                except ValueError:
                    pass
    return out


def _check_family_conflict(node, matches: list, ctx, loc) -> None:
    """A header field of one family after a match that requires the other, in an inet rule:
    nft's "conflicting protocols specified" (its dependency test would contradict)."""
    if isinstance(node, ir.Icmp):  # (its dependency is the transport protocol, not the family)
        if any(isinstance(m, ir.Icmp) and not m.negate and m.family != node.family
               for m in matches) and not node.negate:
            raise ctx.syntax("conflicting protocols: icmp and icmpv6 in one rule (nft: "
                             "conflicting protocols specified)", loc)
        return
    fam = ir.match_family(node) if ir.family_test(node) is None else None
    if fam is None:
        return
    earlier = ir.match_families(m for m in matches if not isinstance(m, ir.Icmp))
    if earlier - {fam}:
        raise ctx.syntax(f"conflicting protocols: an {_FAM_NAME[fam]} field in a rule for "
                         f"{_FAM_NAME[sorted(earlier)[0]]} packets (nft: conflicting protocols "
                         "specified)", loc)


def _check_tproxy(node: ir.TProxySet, matches: list, before: list, ctx, loc) -> None:
    """What nft refuses of a tproxy statement: no transport protocol match before it, or a
    family other than the rule's."""
    if not any(_sets_transport(x) for x in before):
        raise ctx.syntax("tproxy needs a transport protocol match before it (nft: Transparent "
                         "proxy support requires transport protocol match)", loc)
    implied = ir.match_families(matches)
    if implied - {node.family}:
        raise ctx.syntax(f"conflicting protocols: tproxy {node.family} in a rule for "
                         f"{sorted(implied)[0]} packets (nft: conflicting protocols specified)",
                         loc)


def _tproxy_verdict(statements: list, verdict):
    """`tproxy to X [meta mark set M] accept` is the TProxy verdict (mark applied, accepted when
    a socket is found, the rule skipped when not)."""
    if not isinstance(verdict, ir.Accept) or not statements:
        return statements, verdict
    mark = None
    if isinstance(statements[-1], ir.SetMark) and statements[-1].kind == "meta" and \
            len(statements) > 1:
        mark = statements[-1]
    tp = statements[-2] if mark else statements[-1]
    if not isinstance(tp, ir.TProxySet):
        return statements, verdict
    rest = statements[:-2] if mark else statements[:-1]
    v = ir.TProxy(tp.family, tp.addr, tp.port, mark.value if mark else 0,
                  mark.mask if mark else None)
    return rest, v
