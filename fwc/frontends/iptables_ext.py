"""iptables match modules (-m NAME) and targets (-j NAME): their options and how they become IR.

Each extension declares its options (name -> number of arguments) and a builder that turns the
collected options into IR nodes.  Adding an extension means adding one spec here.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

import attrs

from fwc import ir
from fwc.frontends import values as V
from fwc.frontends.values import UnsupportedValue, ValueError_


@attrs.define
class Opt:
    name: str  # canonical long name, e.g. "--dport"
    args: list[str]
    negate: bool
    col: int


class Ctx:
    """What a builder may need to know about the rule being parsed."""

    def __init__(self, family: str, table: str, chain: str, proto: Optional[int], error,
                 proto_neg: bool = False):
        self.family = family
        self.table = table
        self.chain = chain
        self.proto = proto
        self.proto_neg = proto_neg  # (`! -p PROTO`)
        self.error = error  # error(message, opt=None, unsupported=False) -> Exception


@attrs.frozen
class Ext:
    name: str
    options: dict  # option -> nargs; aliases map via `aliases`
    build: Callable
    aliases: dict = attrs.field(factory=dict)
    negatable: frozenset = frozenset()  # options that accept '!'; empty = all


def _one(opts: list[Opt], name: str) -> Optional[Opt]:
    found = [o for o in opts if o.name == name]
    return found[-1] if found else None


def _val(ctx: Ctx, opt: Opt, fn, *a):
    try:
        return fn(*a)
    except ValueError_ as e:
        raise ctx.error(str(e), opt, isinstance(e, UnsupportedValue))


# ----------------------------------------------------------------------------- matches

PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}


def _ports(ctx, o, spec: str, multi: bool) -> Optional[tuple[ir.Range, ...]]:
    """The port ranges; None for a single inverted range (min > max), which iptables keeps for
    some modules (udp, dccp, conntrack) and the kernel then never matches."""
    parts = spec.split(",") if multi else [spec]
    out = []
    for p in parts:
        if multi and ":" in p and "" in p.split(":", 1):
            # (libxt_multiport reads each side as a port: `5000:` and `:100` are refused)
            raise ctx.error(f"invalid port/service '' in {p!r}: multiport ranges need both ends",
                            o)
        try:
            r = V.parse_port_range(p)
            if multi and r.lo == r.hi and ":" in p:  # libxt_multiport: a:b needs a < b
                raise V.EmptyRange(p)
            out.append(r)
        except V.EmptyRange as e:
            if multi:
                raise ctx.error(f"invalid port range {p!r} specified", o) from None
            return None
        except V.ValueError_ as e:
            raise ctx.error(str(e), o, isinstance(e, V.UnsupportedValue)) from None
    return tuple(out)



def _in_order(opts: list[Opt], order: tuple[str, ...]) -> list[Opt]:
    """The module's options in the order iptables-translate writes them (a module is one
    conjunction of pure tests, so the order only affects how the output reads)."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(opts, key=lambda o: rank.get(o.name, len(order)))


def _build_tcpudp(proto: str):
    def build(opts, ctx):
        out = []
        for o in _in_order(opts, ("--sport", "--dport")):
            if o.name in ("--sport", "--dport"):
                ranges = _ports(ctx, o, o.args[0], False)
                if ranges is None:
                    if proto in ("tcp", "sctp"):  # (libxt_tcp / libxt_sctp refuse it)
                        raise ctx.error(f"invalid port range {o.args[0]!r} (min > max)", o)
                    # xt_udp / xt_dccp keep it and match no port: `!=` every port (the header
                    # still needed); negated, any port
                    out.append(ir.Port(proto, o.name[2:], ir.ALL_PORTS, not o.negate))
                    continue
                out.append(ir.Port(proto, o.name[2:], ranges, o.negate))
            elif o.name == "--tcp-flags":
                mask = _flags(ctx, o, o.args[0])
                comp = _flags(ctx, o, o.args[1])
                out.append(ir.TcpFlags(mask, comp, o.negate))
            elif o.name == "--syn":
                syn = frozenset({"SYN", "RST", "ACK", "FIN"})
                out.append(ir.TcpFlags(syn, frozenset({"SYN"}), o.negate))
            elif o.name == "--tcp-option":
                out.append(ir.TcpOption(_val(ctx, o, V.parse_int, o.args[0], 0, 255, "option"),
                                        o.negate))
        if not out and not opts:
            # the bare module still needs a readable header in a first fragment (xt tcp/udp/
            # sctp/dccp return false for fragoff != 0): any source port says just that
            out.append(ir.Port(proto, "sport", (ir.Range(0, 65535),)))
        return out
    return build


# libxt_tcp's flag names (case-insensitive): ALL is these six, not ECE and CWR
_XT_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")


def _flags(ctx, o, s: str) -> frozenset[str]:
    out: set[str] = set()
    for n in s.upper().split(","):
        if n == "ALL":
            out.update(_XT_TCP_FLAGS)
        elif n in _XT_TCP_FLAGS:
            out.add(n)
        elif n != "NONE":
            raise ctx.error(f"unknown TCP flag {n!r} (iptables knows FIN SYN RST PSH ACK URG "
                            "ALL NONE)", o)
    return frozenset(out)


def _build_icmp(family: str):
    def build(opts, ctx):
        out = []
        for o in opts:
            t, (lo, hi) = _val(ctx, o, V.parse_icmp, o.args[0], family)
            if family == "ip" and t == 255:
                t, lo, hi = None, 0, 255  # xt icmp: type 0xff is "any" (iptables-save says so)
            out.append(ir.Icmp(family, t, ir.Range(lo, hi), o.negate))
        if not opts:  # bare -m icmp matches every ICMP packet
            out.append(ir.Icmp(family, None, ir.Range(0, 255)))
        return out
    return build


def _states(ctx, o, allowed) -> frozenset[str]:
    names = [s.upper() for s in o.args[0].split(",")]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ctx.error(f"unknown conntrack state {bad[0]!r}", o)
    return frozenset(names)


def _build_state(opts, ctx):
    return [ir.CtState(_states(ctx, o, ir.CT_STATES), o.negate) for o in opts]


def _addr_values(ctx, o, s):
    return (_val(ctx, o, V.parse_addr, s, ctx.family),)


CONNTRACK_ORDER = ("--ctdir", "--ctproto", "--ctstate", "--ctstatus", "--ctexpire", "--ctorigsrc",
                   "--ctorigdst", "--ctreplsrc", "--ctrepldst", "--ctorigsrcport",
                   "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport")


def _build_conntrack(opts, ctx):
    out = []
    for o in _in_order(opts, CONNTRACK_ORDER):
        n, a = o.name, o.args[0] if o.args else None
        if n == "--ctstate":
            out.append(ir.CtState(_states(ctx, o, ir.CT_STATES + ir.CT_VIRTUAL_STATES), o.negate))
        elif n == "--ctstatus":
            bits = [b.upper() for b in a.split(",")]
            bad = [b for b in bits if b not in ir.CT_STATUS_BITS and b != "NONE"]
            if bad:
                raise ctx.error(f"unknown conntrack status {bad[0]!r}", o)
            if "NONE" in bits:
                raise ctx.error("--ctstatus NONE cannot be expressed exactly", o, True)
            out.append(ir.CtStatus(frozenset(bits), o.negate))
        elif n == "--ctproto":
            out.append(ir.CtProto(_val(ctx, o, V.parse_proto, a), o.negate))
        elif n in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"):
            which = "original" if "orig" in n else "reply"
            field = "saddr" if n.endswith("src") else "daddr"
            out.append(ir.CtAddress(which, field, _addr_values(ctx, o, a), o.negate))
        elif n in ("--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport"):
            which = "original" if "orig" in n else "reply"
            field = "sport" if "srcport" in n else "dport"
            ranges = _ports(ctx, o, a, False)
            # an inverted range (kept by iptables) matches no port: `!=` every port
            out.append(ir.CtPort(which, field, ir.ALL_PORTS, not o.negate) if ranges is None
                       else ir.CtPort(which, field, ranges, o.negate))
        elif n == "--ctexpire":
            lo, _, hi = a.partition(":")
            r = ir.Range(_val(ctx, o, V.parse_int, lo), _val(ctx, o, V.parse_int, hi or lo))
            if r.lo > r.hi:
                raise ctx.error(f"--ctexpire {a}: an inverted range (xt_conntrack keeps it and "
                                "it never matches) is not translated", o, True)
            out.append(ir.CtExpire(ir.Range(r.lo * 1000, r.hi * 1000 + 999), o.negate))
        elif n == "--ctdir":
            d = a.upper()
            if d not in ("ORIGINAL", "REPLY"):
                raise ctx.error(f"--ctdir must be ORIGINAL or REPLY, not {a!r}", o)
            out.append(ir.CtDirection(d, o.negate))
    return out


def _build_multiport(opts, ctx):
    if ctx.proto not in PROTO_NAMES:
        raise ctx.error("multiport needs -p tcp, udp, udplite, dccp or sctp", opts[0] if opts else None)
    proto = PROTO_NAMES[ctx.proto]
    out = []
    for o in opts:
        ranges = _ports(ctx, o, o.args[0], True)
        if len(ranges) + sum(r.lo != r.hi for r in ranges) > 15:
            raise ctx.error("too many ports specified (multiport allows 15)", o)
        field = {"--sports": "sport", "--dports": "dport", "--ports": "port"}[o.name]
        out.append(ir.Port(proto, field, ranges, o.negate))
    return out


def _build_mark(kind):
    def build(opts, ctx):
        return [ir.Mark(kind, *_val(ctx, o, V.parse_value_mask, o.args[0]), negate=o.negate)
                for o in opts]
    return build


def _build_limit(opts, ctx):
    rate, unit = 3, "hour"
    burst = 5
    negate = False
    for o in opts:
        if o.name == "--limit":
            if o.negate:
                raise ctx.error("limit: --limit cannot be inverted (use hashlimit "
                                "--hashlimit-above)", o)
            rate, unit = _val(ctx, o, V.parse_rate, o.args[0])
            per = ir.UNIT_SECONDS.get(unit, 1)
            if rate > 10000 * per:  # (iptables: "Rate too fast")
                raise ctx.error(f"limit: rate too fast {o.args[0]!r} (at most 10000/second)", o)
        elif o.name == "--limit-burst":
            burst = _val(ctx, o, V.parse_int, o.args[0], 1, 10000, "burst")
    return [ir.Limit(rate, unit, burst, negate)]


def _build_mac(opts, ctx):
    return [ir.Mac(_val(ctx, o, V.parse_mac, o.args[0]), o.negate) for o in opts]


ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
              "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")


def _build_addrtype(opts, ctx):
    iface = None
    for o in opts:
        if o.name == "--limit-iface-in":
            iface = "in"
        elif o.name == "--limit-iface-out":
            iface = "out"
    out = []
    for o in opts:
        if o.name in ("--src-type", "--dst-type"):
            types = [t.upper() for t in o.args[0].split(",")]
            bad = [t for t in types if t not in ADDR_TYPES]
            if bad:
                raise ctx.error(f"unknown address type {bad[0]!r}", o)
            field = "saddr" if o.name == "--src-type" else "daddr"
            out.append(ir.AddrType(field, frozenset(types), iface, o.negate))
    return out


def _id_range(ctx, o, s, what):
    lo, sep, hi = s.partition("-")
    def one(x):
        if x.isdigit():
            return V.parse_int(x, what=what)
        try:
            import grp
            import pwd
            return (pwd.getpwnam(x).pw_uid if what == "uid" else grp.getgrnam(x).gr_gid)
        except (KeyError, ImportError):
            raise ValueError_(f"unknown {what} name {x!r} (use a number)") from None
    r = ir.Range(_val(ctx, o, one, lo), _val(ctx, o, one, hi if sep else lo))
    if r.lo > r.hi:  # xt_owner's checkentry refuses it (EINVAL)
        raise ctx.error(f"invalid {what} range {s!r} (min > max)", o)
    return r


def _build_owner(opts, ctx):
    out = []
    for o in opts:
        if o.name == "--uid-owner":
            out.append(ir.SkUid(_id_range(ctx, o, o.args[0], "uid"), o.negate))
        elif o.name == "--gid-owner":
            out.append(ir.SkGid(_id_range(ctx, o, o.args[0], "gid"), o.negate))
        elif o.name == "--socket-exists":
            out.append(ir.SocketExists(o.negate))
        elif o.name == "--suppl-groups":
            raise ctx.error("owner --suppl-groups cannot be expressed in nftables", o, True)
    return out


def _build_socket(opts, ctx):
    names = set()
    for o in opts:
        if o.negate:
            raise ctx.error(f"socket {o.name} cannot be negated", o)
        names.add(o.name)
    return [ir.Socket("--transparent" in names, "--nowildcard" in names,
                      "--restore-skmark" in names)]


def _cut(text: str, size: int) -> str:
    """What iptables-restore 1.8.9 (nf_tables) loads for a prefix longer than its field (LOG:
    29 bytes, NFLOG: 127): the first bytes, without a word of warning; iptables-save shows so."""
    return text.encode()[:size].decode(errors="ignore")


def _build_comment(opts, ctx):
    return []  # the rule keeps the comment text; see iptables.py


def _build_set(opts, ctx):
    out = []
    for o in opts:
        if o.name == "--match-set":
            out.append(ir.SetLookup(o.args[0], _ipset_flags(o, ctx), o.negate))
        else:
            raise ctx.error(f"set {o.name} cannot be expressed in nftables", o, True)
    return out


def _ipset_flags(o, ctx) -> tuple:
    if not 1 <= len(o.args[0]) <= 31:  # IPSET_MAXNAMELEN 32 with its NUL
        raise ctx.error(f"ipset name {o.args[0]!r}: 1 to 31 characters", o)
    flags = o.args[1].split(",")
    if any(f not in ("src", "dst") for f in flags) or len(flags) > 6:
        raise ctx.error(f"invalid ipset flags {o.args[1]!r}", o)
    return tuple(flags)


def _t_set(opts, ctx):
    """xt_SET: add to / delete from ipsets, then go on (XT_CONTINUE)."""
    for o in opts:
        if o.negate:
            raise ctx.error(f"SET {o.name} cannot be negated", o)
    if _one(opts, "--map-set"):
        raise ctx.error("SET --map-set (skb info from an ipset's extensions) cannot be "
                        "expressed in nftables", _one(opts, "--map-set"), True)
    add, delete = _one(opts, "--add-set"), _one(opts, "--del-set")
    if add is None and delete is None:
        raise ctx.error("SET needs --add-set or --del-set", None)
    timeout = None
    t = _one(opts, "--timeout")
    if t is not None:
        if add is None:
            raise ctx.error("SET --timeout goes with --add-set", t)
        if not t.args[0].isdigit() or int(t.args[0]) > 2147483:
            raise ctx.error(f"bad SET timeout {t.args[0]!r} (seconds)", t)
        timeout = int(t.args[0])
    exist = _one(opts, "--exist") is not None
    out = []
    if add is not None:
        out.append(ir.IpsetUpdate(add.args[0], "add", _ipset_flags(add, ctx), timeout, exist))
    if delete is not None:
        out.append(ir.IpsetUpdate(delete.args[0], "del", _ipset_flags(delete, ctx)))
    return TargetResult(tuple(out))


def _build_policy(opts, ctx):
    d = _one(opts, "--dir")
    p = _one(opts, "--pol")
    if d is None or p is None:
        raise ctx.error("policy needs --dir and --pol", opts[0] if opts else None)
    for o in opts:
        if o.name not in ("--dir", "--pol"):
            raise ctx.error(f"policy {o.name} is not supported", o, True)
    if d.args[0] not in ("in", "out") or p.args[0] not in ("ipsec", "none"):
        raise ctx.error("policy --dir in|out --pol ipsec|none", d)
    return [ir.IpsecPolicy(d.args[0], p.args[0] == "ipsec")]


def _build_physdev(opts, ctx):
    out = []
    for o in opts:
        if o.name == "--physdev-is-bridged":
            out.append(ir.PhysDevBridged(o.negate))
        else:
            raise ctx.error(f"physdev {o.name} is not supported", o, True)
    return out


def _build_helper(opts, ctx):
    """xt_helper compares only the master helper's own length (strncmp): `--helper ftp-21`
    matches helper "ftp".  Read as the kernel helper whose name starts the text, so the IR's
    exact name means the same (nft's `ct helper "ftp"` compares exactly)."""
    out = []
    for o in opts:
        name = o.args[0]
        if name not in ir.KERNEL_HELPERS:
            starts = [h for h in ir.KERNEL_HELPERS if name.startswith(h)]
            name = max(starts, key=len) if starts else name
        out.append(ir.Helper(name, o.negate))
    return out


def _build_ipv6header(opts, ctx):
    """`-p N -m ipv6header --header protocol` (no --soft): no extension header, then protocol N,
    i.e. nft's `ip6 nexthdr N` (how fwc writes that for ip6tables).  Other header sets have
    no IR form."""
    from fwc.backends.iptables_tail import IPV6_EXT_HEADERS
    heads = [o for o in opts if o.name == "--header"]
    if ctx.family != "ip6":
        raise ctx.error("-m ipv6header is an ip6tables match", heads[0] if heads else None)
    if len(heads) != 1 or len(opts) != 1 or heads[0].negate or \
            heads[0].args[0].lower() not in ("protocol", "prot") or ctx.proto is None or \
            ctx.proto_neg or ctx.proto in IPV6_EXT_HEADERS:
        raise ctx.error("-m ipv6header is supported as `-p PROTO -m ipv6header --header "
                        "protocol` only (no extension header before PROTO, nft's `ip6 nexthdr "
                        "PROTO`)", heads[0] if heads else None, True)
    return [ir.FieldMatch("ip6 nexthdr", (ctx.proto,))]


def _build_pkttype(opts, ctx):
    out = []
    for o in opts:
        t = o.args[0].lower()
        if t not in ("unicast", "broadcast", "multicast", "host"):
            raise ctx.error(f"unknown packet type {o.args[0]!r}", o)
        out.append(ir.PktType("unicast" if t == "host" else t, o.negate))
    return out


def _build_length(opts, ctx):
    out = []
    for o in opts:
        lo, sep, hi = o.args[0].partition(":")
        r = ir.Range(_val(ctx, o, V.parse_int, lo or "0", 0, 65535, "length"),
                     _val(ctx, o, V.parse_int, hi if sep and hi else (lo if not sep else "65535"),
                          0, 65535, "length"))
        if r.lo > r.hi:  # iptables keeps it; xt_length then matches no packet (negated: all)
            if not o.negate:
                out.append(ir.NEVER)
            continue
        out.append(ir.Length(r, o.negate))
    return out


def _build_ttl(family):
    def build(opts, ctx):
        out = []
        for o in opts:
            op = o.name.rsplit("-", 1)[1]
            v = _val(ctx, o, V.parse_int, o.args[0], 0, 255, "ttl")
            if o.negate:
                if op != "eq":
                    raise ctx.error(f"{o.name} cannot be negated", o)
                op = "ne"
            out.append(ir.Ttl(family, op, v))
        return out
    return build


def _build_tos(opts, ctx):
    out = []
    names = {"minimize-delay": 0x10, "maximize-throughput": 0x08, "maximize-reliability": 0x04,
             "minimize-cost": 0x02, "normal-service": 0x00}
    for o in opts:
        a = o.args[0]
        if a.lower() in names:
            out.append(ir.Tos(names[a.lower()], 0x3F, o.negate))
        else:
            v, m = _val(ctx, o, V.parse_value_mask, a, "tos")
            if v > 0xFF or ("/" in a and m > 0xFF):
                raise ctx.error(f"tos value {a!r} out of range (0-255)", o)
            # a number without a mask compares the whole byte (libxtables: mask = 0xff); only a
            # symbolic name leaves out the precedence bits
            out.append(ir.Tos(v, 0xFF if "/" not in a else m & 0xFF, o.negate))
    return out


def _build_dscp(opts, ctx):
    out = []
    for o in opts:
        if o.name == "--dscp-class":
            c = o.args[0].upper()
            if c not in V.DSCP_CLASSES:
                raise ctx.error(f"unknown DSCP class {o.args[0]!r}", o)
            out.append(ir.Dscp(V.DSCP_CLASSES[c], o.negate))
        else:
            out.append(ir.Dscp(_val(ctx, o, V.parse_int, o.args[0], 0, 63, "DSCP"), o.negate))
    return out


def _build_iprange(opts, ctx):
    out = []
    for o in _in_order(opts, ("--src-range", "--dst-range")):
        try:
            r = V.parse_addr_range(o.args[0], ctx.family)
        except V.EmptyRange:
            # iptables keeps a reversed range ("will never match"): no packet, negated all
            if not o.negate:
                out.append(ir.NEVER)
            continue
        except V.ValueError_ as e:
            raise ctx.error(str(e), o, isinstance(e, V.UnsupportedValue)) from None
        field = "saddr" if o.name == "--src-range" else "daddr"
        out.append(ir.Address(field, (r,), o.negate))
    return out


def _build_statistic(opts, ctx):
    mode = _one(opts, "--mode")
    if mode is None:
        raise ctx.error("statistic needs --mode", opts[0] if opts else None)
    # (libxt_statistic: only --probability and --every take a '!'; the two modes' options
    # do not mix, and --every needs --packet)
    for o in opts:
        if o.negate and o.name in ("--mode", "--packet"):
            raise ctx.error(f"statistic option {o.name} cannot be inverted", o)
    negate = any(o.negate for o in opts)
    prob_opt, every_opt = _one(opts, "--probability"), _one(opts, "--every")
    if prob_opt is not None and (every_opt or _one(opts, "--packet")):
        raise ctx.error("statistic --probability cannot be used together with --every or "
                        "--packet", prob_opt)
    if every_opt is not None and _one(opts, "--packet") is None:
        raise ctx.error("statistic --every also requires --packet", every_opt)
    if mode.args[0] == "random":
        p = _one(opts, "--probability")
        if p is None:
            raise ctx.error("statistic --mode random needs --probability", mode)
        try:
            prob = float(p.args[0])
        except ValueError:
            raise ctx.error(f"invalid probability {p.args[0]!r}", p)
        if not 0.0 <= prob <= 1.0:
            raise ctx.error(f"probability {p.args[0]!r} must be within 0..1", p)
        # the kernel keeps lround(2^31 * p) (libxt_statistic): the IR holds that value
        prob = int(prob * (1 << 31) + 0.5) / (1 << 31)
        return [ir.Statistic("random", probability=prob, negate=negate)]
    if mode.args[0] == "nth":
        e, pk = _one(opts, "--every"), _one(opts, "--packet")
        if e is None:
            raise ctx.error("statistic --mode nth needs --every", mode)
        every = _val(ctx, e, V.parse_int, e.args[0], 1, 2**31, "every")
        packet = _val(ctx, pk, V.parse_int, pk.args[0], 0, every - 1, "packet") if pk else 0
        return [ir.Statistic("nth", every=every, packet=packet, negate=negate)]
    raise ctx.error(f"unknown statistic mode {mode.args[0]!r}", mode)


_UNIT_MS = {u: 1000 * s for u, s in ir.UNIT_SECONDS.items()}


# libxt_hashlimit reads a rate holding "b/s" after digits (or digits and "k" or "m") as
# bytes per second, and scales a burst by a "b", "k" or "m" suffix
_BYTE_RATE = re.compile(r"[0-9]+[km]?b/s.*")
_BYTES = re.compile(r"[0-9]+[bkmBKM].*")


def _build_hashlimit(opts, ctx):
    rate = above = None
    kw = {}
    for o in opts:
        n = o.name
        if n in ("--hashlimit-upto", "--hashlimit"):
            rate, above = o.args[0], False
        elif n == "--hashlimit-above":
            rate, above = o.args[0], True
        elif n == "--hashlimit-burst" and _BYTES.fullmatch(o.args[0]):
            raise ctx.error(f"byte-based hashlimit (--hashlimit-burst {o.args[0]}) is not supported",
                            o, True)
        elif n == "--hashlimit-burst":
            kw["burst"] = _val(ctx, o, V.parse_int, o.args[0], 1, 10**6, "burst")
        elif n == "--hashlimit-mode":
            modes = tuple(o.args[0].split(","))
            bad = [m for m in modes if m not in ("srcip", "dstip", "srcport", "dstport")]
            if bad:
                raise ctx.error(f"unknown hashlimit mode {bad[0]!r}", o)
            kw["mode"] = modes
        elif n == "--hashlimit-name":
            if not o.args[0]:
                raise ctx.error("--hashlimit-name needs at least one character", o)
            kw["name"] = o.args[0]
        elif n == "--hashlimit-srcmask":
            kw["srcmask"] = _val(ctx, o, V.parse_int, o.args[0], 0, 128, "mask")
        elif n == "--hashlimit-dstmask":
            kw["dstmask"] = _val(ctx, o, V.parse_int, o.args[0], 0, 128, "mask")
        elif n == "--hashlimit-htable-expire":
            kw["expire_ms"] = _val(ctx, o, V.parse_int, o.args[0], 0, 2**31, "expire")
        elif n in ("--hashlimit-htable-size", "--hashlimit-htable-max",
                   "--hashlimit-htable-gcinterval"):
            # table sizing: no effect on which packets match below capacity
            _val(ctx, o, V.parse_int, o.args[0], 0, 2**32 - 1, n[2:])
        else:
            raise ctx.error(f"hashlimit {n} is not supported", o, True)
    if rate is None or "name" not in kw:
        raise ctx.error("hashlimit needs --hashlimit-upto/--hashlimit-above and --hashlimit-name",
                        opts[0] if opts else None)
    if _BYTE_RATE.fullmatch(rate):
        # xt_hashlimit's byte mode caps a bucket at one second of credit; nft's byte limit
        # is a bucket of burst bytes, so neither can say the other
        raise ctx.error(f"byte-based hashlimit (rate {rate}) is not supported",
                        next(o for o in opts if o.args and o.args[0] == rate), True)
    r, unit = _val(ctx, opts[0], V.parse_rate, rate)
    # libxt_hashlimit's default, made explicit: one unit of the rate as written (1/min: 60 s),
    # so an idle bucket is forgotten only once it has refilled
    kw.setdefault("expire_ms", _UNIT_MS[unit])
    return [ir.HashLimit(rate=r, unit=unit, above=bool(above), **kw)]


def _unsupported_match(name):
    def build(opts, ctx):
        raise ctx.error(f"match module '{name}' is not supported", opts[0] if opts else None, True)
    return build


PORT_OPTS = {"--sport": 1, "--dport": 1}
PORT_ALIASES = {"--source-port": "--sport", "--destination-port": "--dport"}

MATCHES: dict[str, Ext] = {}


def _m(name, options, build, aliases=None):
    MATCHES[name] = Ext(name, options, build, aliases or {})


_m("tcp", {**PORT_OPTS, "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1}, _build_tcpudp("tcp"),
   PORT_ALIASES)
for _p in ("udp", "sctp", "dccp"):  # (iptables has no udplite match: multiport covers it)
    _m(_p, dict(PORT_OPTS), _build_tcpudp(_p), PORT_ALIASES)
_m("icmp", {"--icmp-type": 1}, _build_icmp("ip"))
_m("icmp6", {"--icmpv6-type": 1}, _build_icmp("ip6"), {"--icmp6-type": "--icmpv6-type"})
_m("state", {"--state": 1}, _build_state)
_m("conntrack", {k: 1 for k in (
    "--ctstate", "--ctstatus", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc",
    "--ctrepldst", "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport",
    "--ctexpire", "--ctdir")}, _build_conntrack)
_m("multiport", {"--sports": 1, "--dports": 1, "--ports": 1}, _build_multiport,
   {"--source-ports": "--sports", "--destination-ports": "--dports"})
_m("mark", {"--mark": 1}, _build_mark("meta"))
_m("connmark", {"--mark": 1}, _build_mark("ct"))
_m("limit", {"--limit": 1, "--limit-burst": 1}, _build_limit)
_m("mac", {"--mac-source": 1}, _build_mac)
_m("addrtype", {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
   _build_addrtype)
_m("socket", {"--transparent": 0, "--nowildcard": 0, "--restore-skmark": 0}, _build_socket)
_m("owner", {"--uid-owner": 1, "--gid-owner": 1, "--socket-exists": 0, "--suppl-groups": 0},
   _build_owner)
_m("comment", {"--comment": 1}, _build_comment)
_m("set", {"--match-set": 2, "--return-nomatch": 0, "--update-counters": 0,
           "--update-subcounters": 0, "--packets-eq": 1, "--packets-lt": 1, "--packets-gt": 1,
           "--bytes-eq": 1, "--bytes-lt": 1, "--bytes-gt": 1, "! --update-counters": 0},
   _build_set, {"--set": "--match-set"})
_m("policy", {"--dir": 1, "--pol": 1, "--strict": 0, "--reqid": 1, "--spi": 1, "--proto": 1,
              "--mode": 1, "--tunnel-src": 1, "--tunnel-dst": 1, "--next": 0}, _build_policy)
_m("physdev", {"--physdev-in": 1, "--physdev-out": 1, "--physdev-is-in": 0, "--physdev-is-out": 0,
               "--physdev-is-bridged": 0}, _build_physdev)
_m("helper", {"--helper": 1}, _build_helper)
_m("pkttype", {"--pkt-type": 1}, _build_pkttype)
_m("ipv6header", {"--header": 1, "--soft": 0}, _build_ipv6header)
_m("length", {"--length": 1}, _build_length)
_m("ttl", {"--ttl-eq": 1, "--ttl-gt": 1, "--ttl-lt": 1}, _build_ttl("ip"))
_m("hl", {"--hl-eq": 1, "--hl-gt": 1, "--hl-lt": 1}, _build_ttl("ip6"))
_m("tos", {"--tos": 1}, _build_tos)
_m("dscp", {"--dscp": 1, "--dscp-class": 1}, _build_dscp)
_m("iprange", {"--src-range": 1, "--dst-range": 1}, _build_iprange)
_m("statistic", {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1}, _build_statistic)
_m("hashlimit", {k: 1 for k in (
    "--hashlimit-upto", "--hashlimit-above", "--hashlimit-burst", "--hashlimit-mode",
    "--hashlimit-name", "--hashlimit-srcmask", "--hashlimit-dstmask", "--hashlimit-htable-size",
    "--hashlimit-htable-max", "--hashlimit-htable-expire", "--hashlimit-htable-gcinterval",
    "--hashlimit")}, _build_hashlimit)

# modules libxtables has for one family only: the other family's tool cannot load them
# ("Couldn't load match"), and reads a target of the other family as a chain name
FAMILY_MATCHES = {"icmp": "ip", "realm": "ip", "ttl": "ip", "dst": "ip6", "frag": "ip6",
                  "hbh": "ip6", "hl": "ip6", "icmp6": "ip6", "ipv6header": "ip6", "mh": "ip6",
                  "rt": "ip6"}
FAMILY_TARGETS = {"TTL": "ip", "HL": "ip6"}
OTHER_FAMILY_HINT = {"icmp": "-m icmp6", "icmp6": "-m icmp", "ttl": "-m hl", "hl": "-m ttl",
                     "TTL": "-j HL", "HL": "-j TTL"}
# other names ip6tables loads a match by (it saves them as the module's own name)
MATCH_ALIASES = {"ip6": {"icmpv6": "icmp6", "ipv6-icmp": "icmp6"}}

# known iptables modules fwc does not translate (yet): a located "not supported" error, exit 1
# modules nftables has no exact form for, and why (README, "Known gaps")
NOT_EXPRESSIBLE_MATCHES = {
    "rpfilter": "nft's fib also accepts reverse routes of type broadcast, multicast or "
                "anycast, which xt_rpfilter rejects",
    "string": "nftables cannot search the packet's contents (xt_string looks for its pattern "
              "anywhere in a range of bytes; nft reads fields at fixed offsets only)",
}
KNOWN_UNSUPPORTED_MATCHES = (
    "connlimit", "string", "u32", "time", "quota", "connbytes", "connlabel", "cgroup",
    "cpu", "devgroup", "ecn", "esp", "ah", "ipcomp", "realm", "rpfilter",
    "tcpmss", "osf", "nfacct", "rateest", "bpf", "ipvs", "l2tp", "frag", "hbh", "dst", "rt", "mh",
    "srh", "geoip", "condition", "account", "psd", "lscan", "ipp2p", "pknock",
    "quota2", "dhcpmac", "fuzzy", "iface", "ipv4options", "random", "nth", "unclean", "connrate",
    "comment2", "layer7", "eui64",
)

# ----------------------------------------------------------------------------- targets

REJECT_V4 = {
    "icmp-net-unreachable": "net-unreachable", "net-unreach": "net-unreachable",
    "icmp-host-unreachable": "host-unreachable", "host-unreach": "host-unreachable",
    "icmp-port-unreachable": "port-unreachable", "port-unreach": "port-unreachable",
    "icmp-proto-unreachable": "prot-unreachable", "proto-unreach": "prot-unreachable",
    "icmp-net-prohibited": "net-prohibited", "net-prohib": "net-prohibited",
    "icmp-host-prohibited": "host-prohibited", "host-prohib": "host-prohibited",
    "icmp-admin-prohibited": "admin-prohibited", "admin-prohib": "admin-prohibited",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
}
REJECT_V6 = {
    "icmp6-no-route": "no-route", "no-route": "no-route",
    "icmp6-adm-prohibited": "admin-prohibited", "adm-prohibited": "admin-prohibited",
    "icmp6-addr-unreachable": "addr-unreachable", "addr-unreach": "addr-unreachable",
    "icmp6-port-unreachable": "port-unreachable", "port-unreach": "port-unreachable",
    "icmp6-policy-fail": "policy-fail", "policy-fail": "policy-fail",
    "icmp6-reject-route": "reject-route", "reject-route": "reject-route",
    "tcp-reset": "tcp-reset",
}


@attrs.frozen
class TargetResult:
    statements: tuple = ()
    verdict: object = None


def _t_simple(verdict):
    return lambda opts, ctx: TargetResult((), verdict)


def _t_reject(opts, ctx):
    o = _one(opts, "--reject-with")
    if o is None:
        return TargetResult((), ir.Reject("port-unreachable"))
    table = REJECT_V4 if ctx.family == "ip" else REJECT_V6
    if o.args[0] not in table:
        raise ctx.error(f"unknown --reject-with type {o.args[0]!r}", o)
    kind = table[o.args[0]]
    if kind == "tcp-reset" and ctx.proto != 6:
        raise ctx.error("--reject-with tcp-reset needs -p tcp", o)
    return TargetResult((), ir.Reject(kind))


def _t_log(opts, ctx):
    prefix = level = None
    flags = set()
    for o in opts:
        if o.name == "--log-prefix":
            prefix = o.args[0]
            if not prefix:  # libxt_LOG: "Argument must have a minimum length of 1 characters"
                raise ctx.error("--log-prefix needs at least one character", o)
            prefix = _cut(prefix, 29)
        elif o.name == "--log-level":
            level = _val(ctx, o, V.parse_log_level, o.args[0])
        else:
            flags.add(o.name[len("--log-"):])
    return TargetResult((ir.Log(prefix, 4 if level is None else level, frozenset(flags)),))


def _t_nflog(opts, ctx):
    kw = {}
    for o in opts:
        if o.name == "--nflog-group":
            kw["group"] = _val(ctx, o, V.parse_int, o.args[0], 0, 65535, "group")
        elif o.name == "--nflog-prefix":
            if not o.args[0]:
                raise ctx.error("--nflog-prefix needs at least one character", o)
            kw["prefix"] = _cut(o.args[0], 127)
        elif o.name in ("--nflog-size", "--nflog-range"):
            kw["size"] = _val(ctx, o, V.parse_int, o.args[0], 0, 2**32 - 1, "size")
        elif o.name == "--nflog-threshold":
            kw["threshold"] = _val(ctx, o, V.parse_int, o.args[0], 1, 2**16 - 1, "threshold")
    return TargetResult((ir.NfLog(**kw),))


def _nat_flags(opts) -> frozenset[str]:
    m = {"--random": "random", "--persistent": "persistent", "--random-fully": "fully-random"}
    return frozenset(m[o.name] for o in opts if o.name in m)


def _nat_target(ctx, o, s: str) -> ir.NatTarget:
    addr_part, port_part = s, None
    if ctx.family == "ip6":
        if s.startswith("["):
            end = s.find("]")
            if end < 0:
                raise ctx.error(f"invalid NAT target {s!r}", o)
            addr_part = s[1:end]
            rest = s[end + 1:]
            port_part = rest[1:] if rest.startswith(":") else None
    elif ":" in s:
        addr_part, port_part = s.split(":", 1)
    addr = None
    if addr_part:
        if "-" in addr_part:
            r = _val(ctx, o, V.parse_addr_range, addr_part, ctx.family)
            addr = r if r.lo != r.hi else V.parse_addr(str(r.lo), ctx.family)
        else:
            addr = _val(ctx, o, V.parse_addr, addr_part, ctx.family)
            if addr.prefixlen != addr.max_prefixlen:
                raise ctx.error(f"NAT address must be a single address or a range: {s!r}", o)
    ports = None
    if port_part:
        if ctx.proto not in PROTO_NAMES:
            raise ctx.error("NAT to a port needs -p tcp, udp, sctp or dccp", o)
        lo, sep, hi = port_part.partition("-")
        ports = ir.Range(_val(ctx, o, V.parse_port, lo), _val(ctx, o, V.parse_port, hi if sep else lo))
    if addr is None and ports is None:
        raise ctx.error(f"empty NAT target {s!r}", o)
    return ir.NatTarget(addr, ports)


def _t_nat(kind):
    opt = "--to-source" if kind is ir.Snat else "--to-destination"
    def build(opts, ctx):
        tos = tuple(_nat_target(ctx, o, o.args[0]) for o in opts if o.name == opt)
        if not tos:
            raise ctx.error(f"{kind.__name__.upper()} needs {opt}", None)
        if len(tos) > 1:
            raise ctx.error(f"several {opt} options are not supported by current kernels",
                            [o for o in opts if o.name == opt][1], True)
        return TargetResult((), kind(tos, _nat_flags(opts)))
    return build


def _t_ports(kind):
    def build(opts, ctx):
        o = _one(opts, "--to-ports")
        ports = None
        if o is not None:
            if ctx.proto not in PROTO_NAMES:
                raise ctx.error("--to-ports needs -p tcp, udp, sctp or dccp", o)
            lo, sep, hi = o.args[0].partition("-")
            ports = ir.Range(_val(ctx, o, V.parse_port, lo),
                             _val(ctx, o, V.parse_port, hi if sep else lo))
        return TargetResult((), kind(ports, _nat_flags(opts)))
    return build


def _t_netmap(opts, ctx):
    o = _one(opts, "--to")
    if o is None:
        raise ctx.error("NETMAP needs --to", None)
    net = _val(ctx, o, V.parse_addr, o.args[0], ctx.family)
    field = "saddr" if ctx.chain in ("POSTROUTING", "INPUT") else "daddr"
    return TargetResult((), ir.Netmap(field, net))


def _t_mark(kind):
    def build(opts, ctx):
        stmts = []
        for o in opts:
            n = o.name
            if n in ("--save-mark", "--restore-mark"):
                nfmask = ctmask = 0xFFFFFFFF
                for x in opts:
                    if x.name == "--mask":
                        nfmask = ctmask = _val(ctx, x, V.parse_int, x.args[0])
                    elif x.name == "--nfmask":
                        nfmask = _val(ctx, x, V.parse_int, x.args[0])
                    elif x.name == "--ctmask":
                        ctmask = _val(ctx, x, V.parse_int, x.args[0])
                if n == "--save-mark":
                    stmts.append(ir.CopyMark("ct", nfmask, ctmask))
                else:
                    stmts.append(ir.CopyMark("meta", ctmask, nfmask))
                continue
            if n in ("--mask", "--nfmask", "--ctmask"):
                continue
            if n == "--set-xmark":
                v, m = _val(ctx, o, V.parse_value_mask, o.args[0])
            elif n == "--set-mark":
                v, m = _val(ctx, o, V.parse_value_mask, o.args[0])
                m |= v
            elif n == "--and-mark":
                v, m = 0, (~_val(ctx, o, V.parse_int, o.args[0])) & 0xFFFFFFFF
            elif n == "--or-mark":
                v = _val(ctx, o, V.parse_int, o.args[0])
                m = v
            elif n == "--xor-mark":
                v, m = _val(ctx, o, V.parse_int, o.args[0]), 0
            else:
                continue
            stmts.append(ir.SetMark(kind, v, m))
        if not stmts:
            raise ctx.error(f"{'MARK' if kind == 'meta' else 'CONNMARK'} needs an action", None)
        return TargetResult(tuple(stmts))
    return build


def _check_helper(o, ctx) -> None:
    """xt_CT refuses (ENOENT) a helper name the kernel does not have, a rule without the
    helper's -p, and a family the helper is not registered for."""
    name = o.args[0]
    known = ir.KERNEL_HELPERS.get(name)
    if known is None:
        raise ctx.error(f"no conntrack helper '{name}' (the kernel has "
                        f"{', '.join(sorted(ir.KERNEL_HELPERS))})", o)
    protos, families = known
    want = " or ".join(f"-p {'tcp' if p == 6 else 'udp'}" for p in sorted(protos))
    if ctx.proto not in protos:
        raise ctx.error(f"CT --helper {name} needs {want} in its rule (the kernel refuses it "
                        "otherwise)", o)
    if ctx.family not in families:
        raise ctx.error(f"the kernel has conntrack helper '{name}' for IPv4 only", o)


def _t_ct(opts, ctx):
    stmts = []
    for o in opts:
        if o.name == "--notrack":
            stmts.append(ir.Notrack())
        elif o.name == "--helper":
            _check_helper(o, ctx)
            stmts.append(ir.CtHelperSet(o.args[0]))
        elif o.name == "--zone":
            stmts.append(ir.CtZoneSet(_val(ctx, o, V.parse_int, o.args[0], 0, 65535, "zone")))
        elif o.name in ("--zone-orig", "--zone-reply"):  # (nft has `ct original zone set`)
            raise ctx.error(f"CT {o.name}: a conntrack zone of one direction is not supported "
                            "(the IR's zones hold for both directions)", o, True)
        elif o.name == "--ctevents":
            raise ctx.error("CT --ctevents (nft `ct event set`) is not supported by fwc yet",
                            o, True)
        else:  # --expevents, --timeout (a policy made by nfct, outside the ruleset)
            raise ctx.error(f"CT {o.name} cannot be expressed in nftables", o, True)
    if ctx.table != "raw":
        raise ctx.error("CT is only valid in the raw table", opts[0] if opts else None)
    return TargetResult(tuple(stmts))


def _t_notrack(opts, ctx):
    if ctx.table != "raw":
        raise ctx.error("NOTRACK is only valid in the raw table", None)
    return TargetResult((ir.Notrack(),))


def _t_tcpmss(opts, ctx):
    if _one(opts, "--clamp-mss-to-pmtu"):
        return TargetResult((ir.TcpMss(None),))
    o = _one(opts, "--set-mss")
    if o is None:
        raise ctx.error("TCPMSS needs --set-mss or --clamp-mss-to-pmtu", None)
    return TargetResult((ir.TcpMss(_val(ctx, o, V.parse_int, o.args[0], 0, 65535, "MSS")),))


def _t_nfqueue(opts, ctx):
    num = ir.Range(0, 0)
    bypass = fanout = False
    for o in opts:
        if o.name == "--queue-num":
            v = _val(ctx, o, V.parse_int, o.args[0], 0, 65535, "queue")
            num = ir.Range(v, v)
        elif o.name == "--queue-balance":
            lo, _, hi = o.args[0].partition(":")
            num = ir.Range(_val(ctx, o, V.parse_int, lo, 0, 65535, "queue"),
                           _val(ctx, o, V.parse_int, hi or lo, 0, 65535, "queue"))
            if num.hi <= num.lo and hi:  # (iptables: "5 should be less than 5")
                raise ctx.error(f"--queue-balance {o.args[0]}: the first queue must be below the "
                              "last", o)
        elif o.name == "--queue-bypass":
            bypass = True
        elif o.name == "--queue-cpu-fanout":
            fanout = True
        elif o.name == "--fail-open":
            raise ctx.error("NFQUEUE --fail-open cannot be expressed in nftables", o, True)
    return TargetResult((), ir.Queue(num, bypass, fanout))


def _t_ttl(family):
    def build(opts, ctx):
        for o in opts:
            op = o.name.rsplit("-", 1)[1]
            v = _val(ctx, o, V.parse_int, o.args[0], 0, 255, "ttl")
            return TargetResult((ir.SetTtl(family, op, v),))
        raise ctx.error("TTL/HL needs an action", None)
    return build


def _t_dscp(opts, ctx):
    for o in opts:
        if o.name == "--set-dscp-class":
            c = o.args[0].upper()
            if c not in V.DSCP_CLASSES:
                raise ctx.error(f"unknown DSCP class {o.args[0]!r}", o)
            return TargetResult((ir.SetDscp(V.DSCP_CLASSES[c]),))
        return TargetResult((ir.SetDscp(_val(ctx, o, V.parse_int, o.args[0], 0, 63, "DSCP")),))
    raise ctx.error("DSCP needs --set-dscp or --set-dscp-class", None)


TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08, "maximize-reliability": 0x04,
             "minimize-cost": 0x02, "normal-service": 0x00}


def _t_tos(opts, ctx):
    for o in opts:
        if o.name == "--set-tos" and o.args[0].lower() in TOS_NAMES:
            # a symbolic TOS value keeps the top two bits (mask 0x3f), as libxt_TOS does
            return TargetResult((ir.SetTos(TOS_NAMES[o.args[0].lower()], 0x3F),))
        if o.name == "--set-tos":
            v, m = _val(ctx, o, V.parse_value_mask, o.args[0], "tos")
            m = 0xFF if m == 0xFFFFFFFF else m
            return TargetResult((ir.SetTos(v, m),))
        x = _val(ctx, o, V.parse_int, o.args[0], 0, 255, "tos")
        if o.name == "--and-tos":
            return TargetResult((ir.SetTos(0, (~x) & 0xFF),))
        if o.name == "--or-tos":
            return TargetResult((ir.SetTos(x, x),))
        if o.name == "--xor-tos":
            return TargetResult((ir.SetTos(x, 0),))
    raise ctx.error("TOS needs an action", None)


def _unsupported_target(name):
    def build(opts, ctx):
        raise ctx.error(f"target '{name}' is not supported", opts[0] if opts else None, True)
    return build


TARGETS: dict[str, Ext] = {}


def _t(name, options, build, aliases=None):
    TARGETS[name] = Ext(name, options, build, aliases or {})


_t("ACCEPT", {}, _t_simple(ir.Accept()))
_t("DROP", {}, _t_simple(ir.Drop()))
_t("RETURN", {}, _t_simple(ir.Return()))
_t("REJECT", {"--reject-with": 1}, _t_reject)
_t("LOG", {"--log-prefix": 1, "--log-level": 1, "--log-tcp-sequence": 0, "--log-tcp-options": 0,
           "--log-ip-options": 0, "--log-uid": 0, "--log-macdecode": 0}, _t_log)
_t("NFLOG", {"--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1,
             "--nflog-threshold": 1}, _t_nflog)
_t("SNAT", {"--to-source": 1, "--random": 0, "--persistent": 0, "--random-fully": 0},
   _t_nat(ir.Snat), {"--to": "--to-source"})
# (DNAT has no --random-fully: iptables 1.8.9 says "unknown option")
_t("DNAT", {"--to-destination": 1, "--random": 0, "--persistent": 0},
   _t_nat(ir.Dnat), {"--to": "--to-destination"})
_t("MASQUERADE", {"--to-ports": 1, "--random": 0, "--random-fully": 0},
   _t_ports(ir.Masquerade))
_t("REDIRECT", {"--to-ports": 1, "--random": 0}, _t_ports(ir.Redirect))
_t("NETMAP", {"--to": 1}, _t_netmap)
_t("MARK", {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1},
   _t_mark("meta"))
_t("CONNMARK", {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1,
                "--xor-mark": 1, "--save-mark": 0, "--restore-mark": 0, "--mask": 1,
                "--nfmask": 1, "--ctmask": 1}, _t_mark("ct"))
_t("CT", {"--notrack": 0, "--helper": 1, "--zone": 1, "--zone-orig": 1, "--zone-reply": 1,
          "--ctevents": 1, "--expevents": 1, "--timeout": 1}, _t_ct)
_t("NOTRACK", {}, _t_notrack)
_t("SET", {"--add-set": 2, "--del-set": 2, "--exist": 0, "--timeout": 1, "--map-set": 2,
           "--map-mark": 0, "--map-prio": 0, "--map-queue": 0}, _t_set)
_t("TCPMSS", {"--set-mss": 1, "--clamp-mss-to-pmtu": 0}, _t_tcpmss)
_t("TRACE", {}, lambda opts, ctx: TargetResult((ir.Trace(),)))
_t("CHECKSUM", {"--checksum-fill": 0}, lambda opts, ctx: TargetResult((ir.Checksum(),)))
_t("NFQUEUE", {"--queue-num": 1, "--queue-balance": 1, "--queue-bypass": 0,
               "--queue-cpu-fanout": 0, "--fail-open": 0}, _t_nfqueue)
_t("QUEUE", {}, _t_simple(ir.Queue()))
_t("TTL", {"--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1}, _t_ttl("ip"))
_t("HL", {"--hl-set": 1, "--hl-dec": 1, "--hl-inc": 1}, _t_ttl("ip6"))
_t("DSCP", {"--set-dscp": 1, "--set-dscp-class": 1}, _t_dscp)
_t("TOS", {"--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1}, _t_tos)

KNOWN_UNSUPPORTED_TARGETS = (
    "TPROXY", "CLASSIFY", "AUDIT", "SYNPROXY", "TEE", "CONNSECMARK", "SECMARK", "IDLETIMER",
    "LED", "RATEEST", "HMARK", "CLUSTERIP", "ULOG", "MIRROR", "SAME", "ECN", "NETLINK", "IPV4OPTSSTRIP",
    "TARPIT", "DELUDE", "CHAOS", "LOGMARK", "SYSRQ", "DNPT", "SNPT", "MASQ", "JOOL", "NFLOG2",
)

# the long tail (IPsec/IPv6 extension headers, meta data, time, quota, CLASSIFY, TEE...)
from fwc.frontends import iptables_ext_tail as _tail  # noqa: E402

_tail.register()
from fwc.frontends import iptables_recent as _recent  # noqa: E402

_recent.register()
tproxy_fallback = _tail.tproxy_fallback
