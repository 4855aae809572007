"""IR matches -> nft expressions.

`render_match` returns alternatives: a list of conjunctions (lists of nft expressions).  One
alternative is the usual case; several mean the match is an OR nft cannot write as one
expression, and the rule must be split (the caller checks that splitting is exact)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Optional, Sequence

from fwc import ir
from fwc.backends.nft_ctx import NotExpressible, RuleCtx, refuse, rule_family
from fwc.backends.nft_names import quote
from fwc.frontends.nft_values import ms_text

Alts = list[list[str]]

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 33: "dccp",
               136: "udplite", 50: "esp", 51: "ah", 47: "gre", 2: "igmp", 108: "comp"}
ICMP_TYPES = {0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect",
              8: "echo-request", 9: "router-advertisement", 10: "router-solicitation",
              11: "time-exceeded", 12: "parameter-problem", 13: "timestamp-request",
              14: "timestamp-reply", 15: "info-request", 16: "info-reply",
              17: "address-mask-request", 18: "address-mask-reply"}
ICMPV6_TYPES = {1: "destination-unreachable", 2: "packet-too-big", 3: "time-exceeded",
                4: "parameter-problem", 128: "echo-request", 129: "echo-reply",
                130: "mld-listener-query", 131: "mld-listener-report", 132: "mld-listener-done",
                133: "nd-router-solicit", 134: "nd-router-advert", 135: "nd-neighbor-solicit",
                136: "nd-neighbor-advert", 137: "nd-redirect", 138: "router-renumbering",
                141: "ind-neighbor-solicit", 142: "ind-neighbor-advert",
                143: "mld2-listener-report"}
TCP_FLAG_NFT = {"FIN": "fin", "SYN": "syn", "RST": "rst", "PSH": "psh", "ACK": "ack",
                "URG": "urg", "ECE": "ecn", "CWR": "cwr"}
CT_STATE_NFT = {"INVALID": "invalid", "ESTABLISHED": "established", "RELATED": "related",
                "NEW": "new", "UNTRACKED": "untracked"}
CT_STATUS_NFT = {"EXPECTED": "expected", "SEEN_REPLY": "seen-reply", "ASSURED": "assured",
                 "CONFIRMED": "confirmed", "SNAT": "snat", "DNAT": "dnat", "DYING": "dying"}
NFPROTO = {"ip": "ipv4", "ip6": "ipv6"}
TRANSPORTS = ("tcp", "udp", "sctp", "dccp", "udplite")


# --------------------------------------------------------------------------- small formatters

def neg(negate: bool) -> str:
    return "!= " if negate else ""


def one_or_set(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def fmt_range(r: ir.Range) -> str:
    return str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}"


def fmt_ranges(ranges: Sequence[ir.Range]) -> str:
    return one_or_set([fmt_range(r) for r in ranges])


@functools.lru_cache(maxsize=65536)  # str() of an IPv6 address is slow; rulesets repeat them
def fmt_addr(a: ir.Addr) -> str:
    if isinstance(a, ir.AddrRange):
        return f"{a.lo}-{a.hi}"
    if a.prefixlen == a.max_prefixlen:
        return str(a.network_address)
    return str(a)


def proto_name(p: int) -> str:
    return PROTO_NAMES.get(p, str(p))


def sorted_names(names, table: dict, order: Sequence[str]) -> list[str]:
    return [table[n] for n in order if n in names]


def addr_family(values: Sequence[ir.Addr], what: str) -> str:
    fams = {ir.ip_family(v) for v in values}
    if len(fams) != 1:
        raise refuse(f"{what} mixing IPv4 and IPv6 addresses")
    return fams.pop()


def need_l3(ctx: RuleCtx, fam: str, what: str) -> None:
    """An address/field of family `fam` in a table that cannot carry it is a broken IR."""
    if ctx.family in ("ip", "ip6") and ctx.family != fam:
        raise refuse(f"{what} of family {fam} in an {ctx.family} table")


def per_family(ctx: RuleCtx, build) -> Alts:
    """Render a family-dependent expression: once when the rule's family is known, else one
    guarded alternative per family (inet tables)."""
    if ctx.l3 is not None:
        return [build(ctx.l3)]
    if ctx.family in ir.L2_FAMILIES:  # no meta nfproto there; the IR has no guard to write
        raise refuse(f"a family-dependent match in a {ctx.family} table")
    return [[f"meta nfproto {NFPROTO[f]}", *build(f)] for f in ("ip", "ip6")]


# --------------------------------------------------------------------------- matches

def render_proto(m: ir.Proto, ctx: RuleCtx) -> Alts:
    key = "ip protocol" if ctx.family == "ip" else "meta l4proto"
    names = [proto_name(p) for p in sorted(m.protos)]
    return [[f"{key} {neg(m.negate)}{one_or_set(names)}"]]


def render_address(m: ir.Address, ctx: RuleCtx) -> Alts:
    fam, text = _address_text(m)
    need_l3(ctx, fam, "address")
    return [[text]]


@functools.lru_cache(maxsize=65536)  # policies repeat the same networks and hosts
def _address_text(m: ir.Address) -> tuple[str, str]:
    fam = addr_family(m.values, "an address list")
    vals = one_or_set([fmt_addr(v) for v in m.values])
    return fam, f"{fam} {m.field} {neg(m.negate)}{vals}"


def iface_literal(name: str) -> Optional[str]:
    """nft literal for an iptables interface name ('+' suffix = prefix wildcard).

    nft 1.0.6 treats only a final '*' as the wildcard and only a final '\\*' as an escaped
    '*'; a backslash anywhere else is kept as a character of the name."""
    wildcard = name.endswith("+")
    stem = name[:-1] if wildcard else name
    if '"' in stem or "\\" in stem:
        return None
    if wildcard:
        return f'"{stem}*"'
    if stem.endswith("*"):  # a literal final '*' must not become a wildcard
        stem = stem[:-1] + "\\*"
    return f'"{stem}"'


# no interface name can contain '/' (the kernel's dev_valid_name refuses it)
NO_IFACE = '"INVAL/D"'


def render_interface(m: ir.Interface, ctx: RuleCtx) -> Alts:
    if m.name == "+":  # matches every name
        if m.negate:  # matches no packet: compare with a name no interface can have
            return [[f"{m.field} {NO_IFACE}"]]
        return [[]]
    lit = iface_literal(m.name)
    if lit is None:
        raise refuse(f"interface name {m.name!r}", "nft strings cannot contain quotes")
    return [[f"{m.field} {neg(m.negate)}{lit}"]]


def _one_negated_value(m: ir.Match) -> bool:
    return isinstance(m, ir.Port) and m.negate and len(m.ranges) == 1 and \
        m.ranges[0].lo == m.ranges[0].hi


def render_port(m: ir.Port, ctx: RuleCtx, rule: ir.Rule) -> Alts:
    if m.proto not in TRANSPORTS:
        raise refuse(f"ports of protocol {m.proto}")
    vals = fmt_ranges(m.ranges)
    if m.field in ("sport", "dport"):
        other = "dport" if m.field == "sport" else "sport"
        if _one_negated_value(m) and any(_one_negated_value(x) and x.proto == m.proto and
                                         x.field == other for x in rule.matches):
            # nft 1.0.6 merges `sport != P dport != Q` into one 32-bit `!=` ("not both");
            # a one-value range compare is left alone
            vals = f"{m.ranges[0].lo}-{m.ranges[0].hi}"
        return [[f"{m.proto} {m.field} {neg(m.negate)}{vals}"]]
    # either port in the list: one lookup of the pair in (R x any) + (not R x R); nft 1.0.6
    # refuses overlapping elements, so the two parts are kept disjoint.  Negated, the same
    # lookup with != (neither port): nft 1.0.6 would merge `sport != P dport != P` into one
    # 32-bit comparison meaning "not both".
    ports = merged(m.ranges)
    rest = complement(ports, 65535)
    elems = [f"{fmt_range(r)} . 0-65535" for r in ports] + \
        [f"{fmt_range(g)} . {fmt_range(r)}" for g in rest for r in ports]
    return [[f"{m.proto} sport . {m.proto} dport {neg(m.negate)}{{ {', '.join(elems)} }}"]]


def merged(ranges: Sequence[ir.Range]) -> list[ir.Range]:
    """The union of `ranges` as sorted, disjoint, non-adjacent ranges."""
    out: list[ir.Range] = []
    for r in sorted(ranges, key=lambda x: x.lo):
        if out and r.lo <= out[-1].hi + 1:
            out[-1] = ir.Range(out[-1].lo, max(out[-1].hi, r.hi))
        else:
            out.append(r)
    return out


def complement(ranges: Sequence[ir.Range], top: int) -> list[ir.Range]:
    """0..top minus the sorted disjoint `ranges`."""
    out, lo = [], 0
    for r in ranges:
        if r.lo > lo:
            out.append(ir.Range(lo, r.lo - 1))
        lo = r.hi + 1
    if lo <= top:
        out.append(ir.Range(lo, top))
    return out


def flag_expr(flags) -> str:
    names = sorted_names(flags, TCP_FLAG_NFT, ir.TCP_FLAGS)
    return "|".join(names) if names else "0x0"


def render_tcpflags(m: ir.TcpFlags, ctx: RuleCtx) -> Alts:
    if not m.comp <= m.mask:  # (flags & mask) can never equal a value outside the mask
        raise refuse("--tcp-flags whose compared flags are not in the mask")
    mask = flag_expr(m.mask)
    comp = flag_expr(m.comp)
    op = "!=" if m.negate else "=="
    return [[f"tcp flags & ({mask}) {op} {comp}"]]


def render_tcpoption(m: ir.TcpOption, ctx: RuleCtx) -> Alts:
    if m.kind < 2:
        raise refuse(f"--tcp-option {m.kind}", "nft cannot test single-byte options")
    if not m.negate:
        return [[f"tcp option {m.kind} exists"]]
    # nft's `tcp option N missing` adds no protocol dependency and holds for every packet
    # whose TCP header it cannot read: a UDP packet, a non-first fragment (kernel-checked);
    # `tcp sport 0-65535` first requires what xt_tcp does, a TCP packet's first fragment
    return [[f"tcp sport 0-65535 tcp option {m.kind} missing"]]


def render_icmp(m: ir.Icmp, ctx: RuleCtx) -> Alts:
    fam = m.family
    need_l3(ctx, fam, "ICMP type")
    kw, names, proto = ("icmp", ICMP_TYPES, "icmp") if fam == "ip" else \
        ("icmpv6", ICMPV6_TYPES, "icmpv6")
    if m.type is None:
        if m.negate:
            raise refuse(f"! --{kw}-type any (matches no packet)")
        key = "ip protocol" if ctx.family == "ip" else "meta l4proto"
        return [[f"{key} {proto}"]]
    tname = names.get(m.type, str(m.type))
    full = m.codes.lo == 0 and m.codes.hi == 255
    if full:
        return [[f"{kw} type {neg(m.negate)}{tname}"]]
    if not m.negate:
        return [[f"{kw} type {tname}", f"{kw} code {fmt_range(m.codes)}"]]
    # not (type and code): one concatenated set lookup keeps it a single rule
    return [[f"{kw} type . {kw} code != {{ {tname} . {fmt_range(m.codes)} }}"]]


def ct_state_expr(states, negate: bool) -> str:
    names = sorted_names(states, CT_STATE_NFT, ir.CT_STATES)
    if not negate:
        return f"ct state {','.join(names)}"
    # `ct state != a,b` compares the whole value; `!` tests that none of the bits is set
    return f"ct state != {names[0]}" if len(names) == 1 else f"ct state ! {','.join(names)}"


def ct_status_expr(bits, negate: bool) -> str:
    names = sorted_names(bits, CT_STATUS_NFT, ir.CT_STATUS_BITS)
    return f"ct status {'! ' if negate else ''}{','.join(names)}"


NO_CONNTRACK = frozenset({"INVALID", "UNTRACKED"})  # the states of packets without a conntrack


def render_ctstate(m: ir.CtState, ctx: RuleCtx) -> Alts:
    real = m.states & frozenset(ir.CT_STATES)
    virtual = m.states & frozenset(ir.CT_VIRTUAL_STATES)
    unknown = m.states - real - virtual
    if unknown:
        raise refuse(f"conntrack state(s) {', '.join(sorted(unknown))}")
    if not virtual:
        return [[ct_state_expr(real, m.negate)]]
    if not m.negate:
        alts = [[ct_status_expr(virtual, False)]]
        return ([[ct_state_expr(real, False)]] + alts) if real else alts
    # none of the states, and (no conntrack, or none of the NAT bits): `ct status` cannot
    # match a packet without conntrack, so that case is tested through its states
    base = [ct_state_expr(real, True)] if real else []
    alts = [base + [ct_status_expr(virtual, True)]]
    no_ct = NO_CONNTRACK - real
    if no_ct:
        alts.insert(0, [ct_state_expr(no_ct, False)])
    return alts


def render_ctstatus(m: ir.CtStatus, ctx: RuleCtx) -> Alts:
    return [[ct_status_expr(m.bits, m.negate)]]


def render_ctdirection(m: ir.CtDirection, ctx: RuleCtx) -> Alts:
    return [[f"ct direction {neg(m.negate)}{m.direction.lower()}"]]


def render_ctproto(m: ir.CtProto, ctx: RuleCtx) -> Alts:
    return [[f"ct original protocol {neg(m.negate)}{proto_name(m.proto)}"]]


def render_ctaddress(m: ir.CtAddress, ctx: RuleCtx) -> Alts:
    fam = addr_family(m.values, "a conntrack address list")
    need_l3(ctx, fam, "conntrack address")
    vals = one_or_set([fmt_addr(v) for v in m.values])
    return [[f"ct {m.which} {fam} {m.field} {neg(m.negate)}{vals}"]]


def render_ctport(m: ir.CtPort, ctx: RuleCtx, rule: ir.Rule) -> Alts:
    # nft 1.0.6 only parses proto-src/proto-dst values once the ct protocol is known
    proto = next((x.proto for x in rule.matches if isinstance(x, ir.CtProto) and not x.negate),
                 None)
    if proto is None:
        raise refuse("--ctorigsrcport/--ctorigdstport without --ctproto",
                     "nft 1.0.6 needs the conntrack protocol to parse the port")
    field = "proto-src" if m.field == "sport" else "proto-dst"
    return [[f"ct {m.which} {field} {neg(m.negate)}{fmt_ranges(m.ranges)}"]]


def render_ctexpire(m: ir.CtExpire, ctx: RuleCtx) -> Alts:
    # nft reads milliseconds into 32 bits: its largest value (49.7 days) is above every
    # lifetime a conntrack entry can have unless its timeouts are raised past 49 days
    lo, hi = m.range.lo, min(m.range.hi, 0xFFFFFFFF)
    if lo > hi:
        raise refuse(f"ct expiration above {0xFFFFFFFF} ms (nft reads 32 bits of milliseconds)")
    value = ms_text(lo) if lo == hi else f"{ms_text(lo)}-{ms_text(hi)}"
    return [[f"ct expiration {neg(m.negate)}{value}"]]


def render_mark(m: ir.Mark, ctx: RuleCtx) -> Alts:
    key = "meta mark" if m.kind == "meta" else "ct mark"
    if m.mask == 0xFFFFFFFF:
        return [[f"{key} {neg(m.negate)}{m.value:#x}"]]
    op = "!=" if m.negate else "=="
    return [[f"{key} & {m.mask:#x} {op} {m.value:#x}"]]


def render_mac(m: ir.Mac, ctx: RuleCtx) -> Alts:
    return [[f"ether saddr {neg(m.negate)}{m.addr.lower()}"]]


def render_addrtype(m: ir.AddrType, ctx: RuleCtx) -> Alts:
    key = f"fib {m.field}"
    if m.limit_iface:
        key += " . iif" if m.limit_iface == "in" else " . oif"
    names = [t.lower() for t in sorted(m.types)]
    return [[f"{key} type {neg(m.negate)}{one_or_set(names)}"]]


def render_uidgid(m, ctx: RuleCtx) -> Alts:
    key = "meta skuid" if isinstance(m, ir.SkUid) else "meta skgid"
    if m.negate:
        # xt_owner's negation also matches packets without a socket; `meta skuid !=` does not
        raise refuse(f"negated {'--uid-owner' if key.endswith('uid') else '--gid-owner'}",
                     "nft cannot match packets without a socket")
    return [[f"{key} {fmt_range(m.range)}"]]


def render_pkttype(m: ir.PktType, ctx: RuleCtx) -> Alts:
    name = "host" if m.type == "unicast" else m.type
    return [[f"meta pkttype {neg(m.negate)}{name}"]]


def render_length(m: ir.Length, ctx: RuleCtx) -> Alts:
    """`ip length` (the IPv4 total length) or `ip6 length` (the payload length: the packet's
    minus the 40-byte header), both 16-bit fields: a range beyond them (nft's `meta length`
    is 32 bits) is cut to what the family's packets can have."""
    def build(fam: str) -> Optional[list[str]]:
        """The words; None when no packet of the family can match."""
        lo, hi = m.range.lo, m.range.hi
        if fam == "ip6":
            lo, hi = max(lo - 40, 0), hi - 40
        hi = min(hi, 0xFFFF)
        if hi < lo:  # no packet of the family has such a length
            return [] if m.negate else None
        return [f"{fam} length {neg(m.negate)}{fmt_range(ir.Range(lo, hi))}"]
    fams = [ctx.l3] if ctx.l3 is not None else ["ip", "ip6"]
    if ctx.l3 is None and ctx.family in ir.L2_FAMILIES:
        raise refuse(f"a family-dependent match in a {ctx.family} table")
    alts = []
    for fam in fams:
        words = build(fam)
        if words is not None:
            alts.append(words if ctx.l3 is not None else [f"meta nfproto {NFPROTO[fam]}", *words])
    if not alts:
        raise refuse("a length no packet has (it matches nothing)")
    return alts


TTL_OPS = {"eq": "", "ne": "!= ", "lt": "< ", "gt": "> "}


def render_ttl(m: ir.Ttl, ctx: RuleCtx) -> Alts:
    need_l3(ctx, m.family, "ttl")
    key = "ip ttl" if m.family == "ip" else "ip6 hoplimit"
    return [[f"{key} {TTL_OPS[m.op]}{m.value}"]]


def render_dscp(m: ir.Dscp, ctx: RuleCtx) -> Alts:
    return per_family(ctx, lambda f: [f"{f} dscp {neg(m.negate)}{m.value:#04x}"])


def render_tos(m: ir.Tos, ctx: RuleCtx) -> Alts:
    op = "!=" if m.negate else "=="

    def build(fam: str) -> list[str]:
        if fam == "ip":
            return [f"@nh,8,8 & {m.mask:#04x} {op} {m.value:#04x}"]
        if m.mask == 0xFC and m.value & 3 == 0:
            return [f"ip6 dscp {neg(m.negate)}{m.value >> 2:#04x}"]
        if m.mask == 0x03:
            return [f"ip6 ecn {neg(m.negate)}{m.value}"]
        raise refuse("ip6tables -m tos with a mask other than the DSCP or ECN bits")
    return per_family(ctx, build)


def render_named_limit(m: ir.NamedLimit, ctx: RuleCtx) -> Alts:
    return [[f'limit name "{ctx.limit_name(m.name)}"']]


def data_rate(n: int) -> str:
    """`N bytes`, `N kbytes` or `N mbytes`, the largest unit that divides n (as nft lists it)."""
    for unit in ("bytes", "kbytes"):
        if n % 1024:
            return f"{n} {unit}"
        n //= 1024
    return f"{n} mbytes"


def limit_text(m: ir.Limit) -> str:
    """`rate [over] ... burst ...` of a limit statement or object."""
    over = "over " if m.negate else ""
    if m.bytes:
        burst = f" burst {data_rate(m.burst)}" if m.burst else ""
        return f"rate {over}{data_rate(m.rate)}/{m.unit}{burst}"
    return f"rate {over}{m.rate}/{m.unit} burst {m.burst} packets"


def render_limit(m: ir.Limit, ctx: RuleCtx) -> Alts:
    if m.burst < 1 and not m.bytes:  # (a byte limit's burst may be 0)
        raise refuse("limit with a burst below 1")
    return [[f"limit {limit_text(m)}"]]


SET_FIELD_TYPES = {"addr": "{fam}_addr", "net": "{fam}_addr", "ip": "{fam}_addr",
                   "mac": "ether_addr"}


def render_setlookup(m: ir.SetLookup, ctx: RuleCtx, sets: dict) -> Alts:
    s = sets.get(m.name)
    if s is None:
        raise refuse(f"set {m.name!r} that the table does not declare")
    if len(s.fields) != len(m.fields):
        raise refuse(f"set {m.name!r} looked up with {len(m.fields)} field(s)")
    parts = []
    for kind, field in zip(s.fields, m.fields):
        field = {"src": "saddr", "dst": "daddr"}.get(field, field)
        if kind in ("addr", "net", "ip") and field in ("saddr", "daddr"):
            need_l3(ctx, s.family, "set")
            parts.append(f"{s.family} {field}")
        elif kind == "mac" and field == "saddr":
            parts.append("ether saddr")
        else:
            raise refuse(f"set {m.name!r} field {kind} matched on {field}")
    return [[f"{' . '.join(parts)} {neg(m.negate)}@{ctx.set_name(m.name)}"]]


def render_ipsec(m: ir.IpsecPolicy, ctx: RuleCtx) -> Alts:
    state = "exists" if m.ipsec else "missing"
    key = "meta ipsec" if m.direction == "in" else "rt ipsec"
    return [[f"{key} {state}"]]


def render_statistic(m: ir.Statistic, ctx: RuleCtx) -> Alts:
    if m.mode == "random":
        # xt_statistic: (random u32 & 0x7fffffff) < lround(2^31 * p); nft's meta random is a
        # random u32 as well, so the same test is exact
        if not 0 <= m.probability <= 1:
            raise refuse(f"statistic probability {m.probability}")
        limit = int(m.probability * (1 << 31) + 0.5)
        op = ">=" if m.negate else "<"
        return [[f"meta random & 2147483647 {op} {limit}"]]
    if m.mode == "nth":
        if m.every < 1 or not 0 <= m.packet < m.every:
            raise refuse(f"statistic nth every {m.every} packet {m.packet}")
        # measured with iptables 1.8.9 in a 6.x kernel: --every N --packet P matches the
        # packets k = P, P+N, P+2N... (0-based); numgen inc yields k mod N from a fresh rule
        hit = m.packet
        return [[f"numgen inc mod {m.every} {neg(m.negate)}{hit}"]]
    raise refuse(f"statistic mode {m.mode}")


def render_fragment(m: ir.Fragment, ctx: RuleCtx) -> Alts:
    if ctx.family == "ip6" or ctx.l3 == "ip6":
        raise refuse("-f in an IPv6 table")
    op = "==" if m.negate else "!="
    alts = [["ip frag-off & 0x1fff " + op + " 0"]]
    if ctx.l3 is None:
        alts = [["meta nfproto ipv4", *alts[0]]]
    return alts


HASHLIMIT_KEYS = {"srcip": ("saddr", "addr"), "dstip": ("daddr", "addr"),
                  "srcport": ("sport", "inet_service"), "dstport": ("dport", "inet_service")}


def render_hashlimit(m: ir.HashLimit, ctx: RuleCtx, rule: ir.Rule) -> Alts:
    """xt_hashlimit keeps one token bucket per key in a table named --hashlimit-name, shared
    by every rule using that name, and forgets a key idle for htable-expire ms: that is an nft
    dynamic set (timeout = expire, refreshed by `update`) whose elements carry a limit."""
    if ctx.dynamic_set is None:
        raise refuse("hashlimit")
    fam = rule_family(ctx, rule)
    if fam is None:
        raise refuse("hashlimit in an inet table serving both families")
    keys, types = [], []
    for mode in m.mode or ():
        field, kind = HASHLIMIT_KEYS[mode]
        if kind == "addr":
            bits = m.srcmask if field == "saddr" else m.dstmask
            width = 32 if fam == "ip" else 128
            expr = f"{fam} {field}"
            if bits is not None and bits < width:
                mask = ipaddress.ip_network(f"{'0.0.0.0' if fam == 'ip' else '::'}/{bits}").netmask
                expr += f" and {mask}"
            keys.append(expr)
            types.append(f"{'ipv4' if fam == 'ip' else 'ipv6'}_addr")
        else:
            protos = {implied_protocol(x, ctx.family) for x in rule.matches} - {None}
            protos |= {p for x in rule.matches if isinstance(x, ir.Proto) and not x.negate
                       for p in x.protos}
            if len(protos) != 1 or not protos <= {6, 17, 132, 33, 136}:
                raise refuse("hashlimit on ports without a single port protocol")
            keys.append(f"th {field}")
            types.append("inet_service")
    if not keys:
        # no mode: one bucket for all packets of the rule set; nft has no keyless set, so a
        # constant key stands for it (meta protocol: the family's ethertype in an ip / ip6
        # table; nft refuses meta nfproto outside inet)
        keys, types = ["meta protocol"], ["ether_type"]
    expire = 10000 if m.expire_ms is None else m.expire_ms
    name = ctx.dynamic_set(m.name, tuple(types), expire)
    over = "over " if m.above else ""
    return [[f"update @{name} {{ {' . '.join(keys)} limit rate {over}{m.rate}/{m.unit} "
             f"burst {m.burst} packets }}"]]


_SIMPLE: dict = {}  # match type -> renderer(m, ctx); filled on first use (all defined by then)


def _simple_renderers() -> dict:
    _SIMPLE.update({
        ir.Proto: render_proto, ir.Address: render_address, ir.Interface: render_interface,
        ir.TcpFlags: render_tcpflags, ir.TcpOption: render_tcpoption,
        ir.Icmp: render_icmp, ir.CtState: render_ctstate, ir.CtStatus: render_ctstatus,
        ir.CtDirection: render_ctdirection, ir.CtProto: render_ctproto,
        ir.CtAddress: render_ctaddress, ir.CtExpire: render_ctexpire, ir.Mark: render_mark,
        ir.Mac: render_mac, ir.AddrType: render_addrtype, ir.SkUid: render_uidgid,
        ir.SkGid: render_uidgid, ir.PktType: render_pkttype, ir.Length: render_length,
        ir.Ttl: render_ttl, ir.Dscp: render_dscp, ir.Tos: render_tos, ir.Limit: render_limit, ir.NamedLimit: render_named_limit,
        ir.IpsecPolicy: render_ipsec, ir.Statistic: render_statistic,
        ir.Fragment: render_fragment,
    })
    return _SIMPLE


def render_match(m: ir.Match, ctx: RuleCtx, rule: ir.Rule, sets: dict) -> Alts:
    fn = (_SIMPLE or _simple_renderers()).get(type(m))
    if fn is not None:
        return fn(m, ctx)
    if isinstance(m, ir.CtPort):
        return render_ctport(m, ctx, rule)
    if isinstance(m, ir.Port):
        return render_port(m, ctx, rule)
    if isinstance(m, ir.SetLookup):
        return render_setlookup(m, ctx, sets)
    if isinstance(m, ir.HashLimit):
        return render_hashlimit(m, ctx, rule)
    if isinstance(m, ir.FieldMatch):
        from fwc.backends.nft_native import render_fieldmatch
        return render_fieldmatch(m)
    if isinstance(m, ir.SetMatch):
        from fwc.backends.nft_native import render_setmatch
        return render_setmatch(m, ctx)
    if isinstance(m, ir.CtCount):
        from fwc.backends.nft_native import render_ctcount
        return render_ctcount(m)
    if isinstance(m, ir.SetLimit):
        from fwc.backends.nft_native import render_setlimit
        return render_setlimit(m, ctx)
    if isinstance(m, ir.Refused):
        raise NotExpressible(m.message, verbatim=True)
    if isinstance(m, ir.SocketExists):
        raise refuse("-m owner --socket-exists",
                     "nft's socket tests need a socket file, xt_owner does not")
    if isinstance(m, ir.PhysDevBridged):
        raise refuse("-m physdev --physdev-is-bridged",
                     "bridge port metadata is not available to ip/ip6 tables")
    if isinstance(m, ir.Helper):
        # nft's ct helper, like xt_helper, reads the helper of the connection's master; the
        # negation is the backend's helper_lines (xt's also holds without a master)
        lit = quote(m.name) if m.name else None
        if lit is None or m.negate:
            raise refuse(f"-m helper {'! ' if m.negate else ''}--helper {m.name!r}",
                         "nft cannot say it here" if m.negate else
                         "an empty name matches every helper, a name nft strings cannot hold")
        return [[f"ct helper {lit}"]]
    from fwc.backends.nft_tail import render_tail_match  # iptables long tail (helper tx)
    alts = render_tail_match(m, ctx, rule)
    if alts is not None:
        return alts
    raise refuse(ir.construct_name(m))


# protocol implied by a later match: `-p tcp --dport 22` is just `tcp dport 22`
def implied_protocol(m: ir.Match, family: str) -> Optional[int]:
    if isinstance(m, ir.Port):
        return ir.L4_PROTOS.get(m.proto)
    if isinstance(m, (ir.TcpFlags, ir.TcpOption)):
        return 6
    if isinstance(m, ir.Icmp) and m.type is not None:
        return 1 if m.family == "ip" else 58
    return None


def redundant_proto(m: ir.Proto, rule: ir.Rule) -> bool:
    if m.negate or len(m.protos) != 1:
        return False
    (p,) = m.protos
    for x in reversed(rule.matches):  # the port match usually comes last
        if x is not m and implied_protocol(x, "") == p:
            return True
    return False
