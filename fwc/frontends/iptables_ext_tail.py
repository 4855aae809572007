"""The long tail of iptables match modules and targets: header fields (IPsec, IPv6 extension
headers, ECN...), meta data (realm, devgroup, cpu), conntrack counters, time, quota, and the
targets CLASSIFY, AUDIT, TEE and TPROXY.

Each is translated only where nft means exactly what the xt module does (checked against the
kernel's xt_*.c behaviour); anything else is a located `unsupported` error.  Registered into
`iptables_ext.MATCHES` / `TARGETS` when that module is imported.

Shared caveat (as for -p tcp --dport): xt modules *drop* a packet whose header is truncated
("hotdrop"); nft just does not match it.  Only malformed packets differ.
"""

from __future__ import annotations

import ipaddress

import attrs

from fwc import ir
from fwc.frontends import values as V
from fwc.frontends.iptables_ext import TargetResult, _m, _one, _t, _val

U32 = V.U32_MAX


def _fm(expr, values, negate=False, **kw) -> ir.FieldMatch:
    return ir.FieldMatch(expr, tuple(values), negate=negate, **kw)


def _range(ctx, o, hi_max=U32, what="value") -> ir.Range:
    return _val(ctx, o, V.parse_uint_range, o.args[0], hi_max, what)


def _never(expr: str, bits: int) -> ir.FieldMatch:
    """A relation on `expr` that no packet satisfies (its header still required)."""
    return _fm(expr, (ir.Range(0, 2**bits - 1),), negate=True)


def _clamped(expr: str, r: ir.Range, bits: int, negate: bool) -> ir.FieldMatch:
    """`expr` in r, for a u32 option range compared with a narrower header field."""
    top = 2**bits - 1
    if r.lo > top:  # the field can never be in range
        return _never(expr, bits) if not negate else _fm(expr, (ir.Range(0, top),))
    hi = min(r.hi, top)
    return _fm(expr, (r.lo if r.lo == hi else ir.Range(r.lo, hi),), negate)  # (as nft reads it)


def _only(ctx, o, family: str, module: str):
    if ctx.family != family:
        raise ctx.error(f"{module} {o.name} is only valid in {'ip6tables' if family == 'ip6' else 'iptables'}", o)


# ----------------------------------------------------------------------------- IPsec headers


def _build_ah(opts, ctx):
    out = []
    spi = _one(opts, "--ahspi")
    for o in opts:
        if o.name in ("--ahlen", "--ahres"):
            _only(ctx, o, "ip6", "ah")
    if spi is not None:
        out.append(_fm("ah spi", (_range(ctx, spi, what="SPI"),), spi.negate))
    elif not any(o.name == "--ahlen" for o in opts):
        out.append(_fm("ah spi", (ir.Range(0, U32),)))  # bare -m ah: an AH header is there
    for o in opts:
        if o.name == "--ahlen":
            # ip6t_ah compares the header length in bytes, (hdrlen + 2) * 4
            n = _val(ctx, o, V.parse_int, o.args[0], 0, U32, "length")
            if n == 0:
                continue  # 0 means "not given" to the kernel
            if n % 4 or not 8 <= n <= 1028:
                out.append(_fm("ah hdrlength", (ir.Range(0, 255),)) if o.negate
                           else _never("ah hdrlength", 8))
            else:
                out.append(_fm("ah hdrlength", (n // 4 - 2,), o.negate))
        elif o.name == "--ahres":  # matches when the reserved field is zero
            out.append(_fm("ah reserved", (0,)))
    return out


def _spi_only(expr: str, opt: str, bits: int):
    def build(opts, ctx):
        o = _one(opts, opt)
        if o is None:
            return [_fm(expr, (ir.Range(0, 2**bits - 1),))]
        return [_clamped(expr, _range(ctx, o, what="SPI"), bits, o.negate)]
    return build


def _build_ipcomp(opts, ctx):
    for o in opts:
        if o.name == "--compres":
            raise ctx.error("ipcomp --compres cannot be expressed in nftables", o, True)
    return _spi_only("comp cpi", "--ipcompspi", 16)(opts, ctx)


# ----------------------------------------------------------------------------- IPv6 extension headers


def _optlen(ctx, o, expr: str) -> ir.FieldMatch:
    """--rt-len/--hbh-len/--dst-len: the header's total length in bytes, (hdrlength + 1) * 8."""
    n = _val(ctx, o, V.parse_int, o.args[0], 0, U32, "length")
    if n % 8 or not 8 <= n <= 2048:  # no header has that length
        return _fm(expr, (ir.Range(0, 255),)) if o.negate else _never(expr, 8)
    return _fm(expr, (n // 8 - 1,), o.negate)


def _exists(hdr: str) -> ir.FieldMatch:
    return _fm(f"exthdr {hdr}", ("exists",))


def _build_frag(opts, ctx):
    out = []
    for o in opts:
        _only(ctx, o, "ip6", "frag")
        if o.name == "--fragid":
            r = _range(ctx, o, what="fragment id")
            if r == ir.Range(0, U32) and not o.negate:
                out.append(_exists("frag"))
            else:
                out.append(_fm("frag id", (r,), o.negate))
        elif o.name == "--fraglen":
            raise ctx.error("frag --fraglen has no effect in current kernels", o, True)
        elif o.name == "--fragres":
            out += [_fm("frag reserved", (0,)), _fm("frag reserved2", (0,))]
        elif o.name == "--fragfirst":
            out.append(_fm("frag frag-off", (0,)))
        elif o.name == "--fragmore":
            out.append(_fm("frag more-fragments", (1,)))
        elif o.name == "--fraglast":
            out.append(_fm("frag more-fragments", (0,)))
    return out or [_exists("frag")]


def _build_rt(opts, ctx):
    out = []
    for o in opts:
        _only(ctx, o, "ip6", "rt")
        if o.name in ("--rt-0-res", "--rt-0-addrs", "--rt-0-not-strict"):
            raise ctx.error(f"rt {o.name} (type 0 routing header contents) cannot be expressed "
                            "in nftables", o, True)
    # the kernel tests type, segments left, then length: keep that order
    t = _one(opts, "--rt-type")
    if t is not None:
        v = _val(ctx, t, V.parse_int, t.args[0], 0, U32, "type")
        out.append(_clamped("rt type", ir.Range(v, v), 8, t.negate))
    s = _one(opts, "--rt-segsleft")
    if s is not None:
        r = _range(ctx, s, what="segments left")
        if r == ir.Range(0, U32) and not s.negate:
            out.append(_exists("rt"))
        else:
            out.append(_clamped("rt seg-left", r, 8, s.negate))
    n = _one(opts, "--rt-len")
    if n is not None:
        out.append(_optlen(ctx, n, "rt hdrlength"))
    return out or [_exists("rt")]


def _build_opts_hdr(hdr: str):
    def build(opts, ctx):
        out = []
        for o in opts:
            _only(ctx, o, "ip6", hdr)
            if o.name.endswith("-opts"):
                raise ctx.error(f"{hdr} {o.name} cannot be expressed in nftables", o, True)
            out.append(_optlen(ctx, o, f"{hdr} hdrlength"))
        return out or [_exists(hdr)]
    return build


MH_TYPES = {
    "binding-refresh-request": 0, "brr": 0, "home-test-init": 1, "hoti": 1,
    "careof-test-init": 2, "coti": 2, "home-test": 3, "hot": 3, "careof-test": 4, "cot": 4,
    "binding-update": 5, "bu": 5, "binding-acknowledgement": 6, "ba": 6, "binding-error": 7,
    "be": 7,
}


def _mh_type(s: str) -> int:
    if s.lower() in MH_TYPES:
        return MH_TYPES[s.lower()]
    return V.parse_int(s, 0, 255, "mobility header type")


def _build_mh(opts, ctx):
    o = _one(opts, "--mh-type")
    if o is None:
        return [_fm("mh type", (ir.Range(0, 255),))]
    lo, sep, hi = o.args[0].partition(":")
    r = ir.Range(_val(ctx, o, _mh_type, lo) if lo else 0,
                 _val(ctx, o, _mh_type, hi) if sep and hi else (255 if sep else _val(ctx, o, _mh_type, lo)))
    if r.lo > r.hi:
        raise ctx.error(f"empty mobility header type range {o.args[0]!r}", o)
    return [_fm("mh type", (r,), o.negate)]


# ----------------------------------------------------------------------------- meta data


def _value_mask(ctx, o, bits=32):
    v, m = _val(ctx, o, V.parse_value_mask, o.args[0], "value")
    return v, m


def _build_realm(opts, ctx):
    out = []
    for o in opts:
        if not o.args[0].split("/")[0][:1].isdigit():
            raise ctx.error(f"realm names are not supported (use the number): {o.args[0]!r}", o,
                            True)
        v, m = _value_mask(ctx, o)
        # xt_realm: id == (tclassid & mask); the id itself is not masked
        out.append(_fm("meta rtclassid", (v,), o.negate, mask=None if m == U32 else m))
    return out


def _build_devgroup(opts, ctx):
    out = []
    for o in opts:
        if not o.args[0].split("/")[0][:1].isdigit():
            raise ctx.error(f"device group names are not supported (use the number): "
                            f"{o.args[0]!r}", o, True)
        v, m = _value_mask(ctx, o)
        expr = "meta iifgroup" if o.name == "--src-group" else "meta oifgroup"
        # xt_devgroup: ((group ^ value) & mask) == 0
        out.append(_fm(expr, (v & m,), o.negate, mask=None if m == U32 else m))
    return out


def _build_cpu(opts, ctx):
    return [_fm("meta cpu", (_val(ctx, o, V.parse_int, o.args[0], 0, U32, "cpu"),), o.negate)
            for o in opts]


def _build_cgroup(opts, ctx):
    o = opts[0] if opts else None
    # xt_cgroup looks at skb->sk only when it is a full socket of any namespace; nft's meta
    # cgroup maps request sockets to their listener and skips other namespaces' sockets
    raise ctx.error("cgroup cannot be expressed exactly: nft's meta cgroup also sees the listener "
                    "of SYN-ACKs (xt_cgroup does not)", o, True)


# ----------------------------------------------------------------------------- ECN, MSS


ECN_NAMES = ("not-ect", "ect1", "ect0", "ce")


def _build_ecn(opts, ctx):
    out = []
    for o in opts:
        if o.name == "--ecn-ip-ect":
            v = _val(ctx, o, V.parse_int, o.args[0], 0, 3, "ECN codepoint")
            out.append(_fm(f"{ctx.family} ecn", (ECN_NAMES[v],), o.negate))
        else:
            if ctx.proto not in (None, 6):
                raise ctx.error(f"{o.name} needs -p tcp", o)
            flag = "ECE" if o.name == "--ecn-tcp-ece" else "CWR"
            comp = frozenset() if o.negate else frozenset({flag})
            out.append(ir.TcpFlags(frozenset({flag}), comp))
    return out


def _build_tcpmss(opts, ctx):
    o = _one(opts, "--mss")
    if o is None:
        raise ctx.error("tcpmss needs --mss", None)
    if o.negate:  # xt_tcpmss: '! --mss' also matches packets without an MSS option
        return [ir.MssOutside(_range(ctx, o, 65535, "MSS"))]
    return [_fm("tcp option maxseg size", (_range(ctx, o, 65535, "MSS"),))]


# ----------------------------------------------------------------------------- conntrack


def _build_connbytes(opts, ctx):
    c, d, mode = _one(opts, "--connbytes"), _one(opts, "--connbytes-dir"), _one(opts, "--connbytes-mode")
    if c is None or d is None or mode is None:
        raise ctx.error("connbytes needs --connbytes, --connbytes-dir and --connbytes-mode",
                        opts[0] if opts else None)
    if d.args[0] not in ("original", "reply", "both"):
        raise ctx.error(f"invalid --connbytes-dir {d.args[0]!r}", d)
    if mode.args[0] not in ("packets", "bytes", "avgpkt"):
        raise ctx.error(f"invalid --connbytes-mode {mode.args[0]!r}", mode)
    u64 = 2**64 - 1
    r = _val(ctx, c, V.parse_uint_range, c.args[0], u64, "count")
    if ":" not in c.args[0]:  # a single number is a lower bound
        r = ir.Range(r.lo, u64)
    expr = "ct " + ("" if d.args[0] == "both" else d.args[0] + " ") + mode.args[0]
    # nft enables conntrack accounting for ct bytes/packets/avgpkt, as xt_connbytes does
    if r.hi == u64:
        return [_fm(expr, (r.lo,), op="lt" if c.negate else "ge")]
    return [_fm(expr, (r,), c.negate)]


def _build_connlabel(opts, ctx):
    lab = _one(opts, "--label")
    if lab is None:
        raise ctx.error("connlabel needs --label", None)
    if not lab.args[0].isdigit():
        raise ctx.error(f"connection label names are not supported (use the bit number): "
                        f"{lab.args[0]!r}", lab, True)
    bit = _val(ctx, lab, V.parse_int, lab.args[0], 0, 127, "label")
    if _one(opts, "--set") is not None:
        return [ir.ConnLabelSet(bit, lab.negate)]
    return [ir.ConnLabel(bit, lab.negate)]


def _build_quota(opts, ctx):
    o = _one(opts, "--quota")
    if o is None:
        raise ctx.error("quota needs --quota", None)
    n = _val(ctx, o, V.parse_int, o.args[0], 0, 2**63 - 1, "quota")
    # xt_quota matches while the running total is <= N, and so does nft's `quota N bytes`
    return [ir.Quota(n, o.negate)]


# ----------------------------------------------------------------------------- time

WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")  # libxt_time compares two letters


def _weekdays(ctx, o) -> int:
    bits = 0
    for day in o.args[0].split(","):
        if day.isdigit():
            if not 1 <= int(day) <= 7:
                raise ctx.error(f"{day!r} is not a day of the week (1 = Monday .. 7 = Sunday)", o)
            bits |= 1 << int(day)
            continue
        if day[:2] not in WEEKDAYS:
            raise ctx.error(f"{day!r} is not a valid day (Mon,Tue,Wed,Thu,Fri,Sat,Sun)", o)
        bits |= 1 << (WEEKDAYS.index(day[:2]) + 1)
    return bits ^ 0xFE if o.negate else bits


def _monthdays(ctx, o) -> int:
    bits = 0
    for day in o.args[0].split(","):
        if not day.isdigit() or not 1 <= int(day) <= 31:
            raise ctx.error(f"{day!r} is not a day of the month (1 to 31)", o)
        bits |= 1 << int(day)
    return bits ^ 0xFFFFFFFE if o.negate else bits


def _build_time(opts, ctx):
    for o in opts:
        if o.name in ("--localtz", "--kerneltz"):
            raise ctx.error(f"time {o.name} cannot be expressed exactly: it uses the kernel's "
                            "time zone, which the ruleset cannot know", o, True)
        if o.negate and o.name not in ("--weekdays", "--monthdays"):
            raise ctx.error(f"{o.name} cannot be negated", o)
    kw = {}
    for name, key, parse in (("--datestart", "date_start", V.parse_date),
                             ("--datestop", "date_stop", V.parse_date),
                             ("--timestart", "daytime_start", V.parse_daytime),
                             ("--timestop", "daytime_stop", V.parse_daytime)):
        o = _one(opts, name)
        if o is not None:
            kw[key] = _val(ctx, o, parse, o.args[0])
    wd, md = _one(opts, "--weekdays"), _one(opts, "--monthdays")
    if wd is not None:
        kw["weekdays"] = _weekdays(ctx, wd)
    if md is not None:
        kw["monthdays"] = _monthdays(ctx, md)
    m = ir.Time(**kw)
    cont = _one(opts, "--contiguous")
    if cont is not None:
        if m.daytime_start < m.daytime_stop:
            raise ctx.error("time: --contiguous only makes sense when --timestop is earlier "
                            "than --timestart", cont)
        m = attrs.evolve(m, contiguous=True)
    return [m]


# ----------------------------------------------------------------------------- dccp, sctp

DCCP_TYPES = ("REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET",
              "SYNC", "SYNCACK")


def dccp_types(ctx, o) -> tuple:
    vals = []
    for name in o.args[0].upper().split(","):
        if name == "INVALID":
            vals.append(ir.Range(10, 15))
        elif name in DCCP_TYPES:
            vals.append(DCCP_TYPES.index(name))
        else:
            raise ctx.error(f"unknown DCCP type {name!r}", o)
    return tuple(vals)


# ----------------------------------------------------------------------------- targets


def _t_classify(opts, ctx):
    o = _one(opts, "--set-class")
    if o is None:
        raise ctx.error("CLASSIFY needs --set-class", None)
    major, sep, minor = o.args[0].partition(":")
    try:
        if not sep:
            raise ValueError
        v = (int(major, 16) << 16) | int(minor, 16)
        if int(major, 16) > 0xFFFF or int(minor, 16) > 0xFFFF:
            raise ValueError
    except ValueError:
        raise ctx.error(f"invalid class {o.args[0]!r} (expected MAJOR:MINOR in hex)", o) from None
    return TargetResult((ir.SetPriority(v),))


def _t_audit(opts, ctx):
    o = _one(opts, "--type")
    if o is not None and o.args[0] not in ("accept", "drop", "reject"):
        raise ctx.error(f"invalid AUDIT --type {o.args[0]!r}", o)
    # since Linux 4.12 --type no longer changes the record
    return TargetResult((ir.Audit(),))


def _t_tee(opts, ctx):
    gw = _one(opts, "--gateway")
    if gw is None:
        raise ctx.error("TEE needs --gateway", None)
    try:
        addr = ipaddress.ip_address(gw.args[0])
    except ValueError:
        raise ctx.error(f"invalid gateway {gw.args[0]!r}", gw) from None
    if (addr.version == 4) != (ctx.family == "ip"):
        raise ctx.error(f"gateway {gw.args[0]!r} is not of this table's family", gw)
    oif = _one(opts, "--oif")
    return TargetResult((ir.Dup(addr, oif.args[0] if oif else None),))


def _t_tproxy(opts, ctx):
    if ctx.table != "mangle":
        raise ctx.error("TPROXY is only valid in the mangle table", None)
    if ctx.proto not in (6, 17):
        raise ctx.error("TPROXY needs -p tcp or -p udp", None)
    port = _one(opts, "--on-port")
    ip = _one(opts, "--on-ip")
    mark = _one(opts, "--tproxy-mark")
    p = _val(ctx, port, V.parse_int, port.args[0], 0, 65535, "port") if port else 0
    addr = None
    if ip is not None:
        try:
            addr = ipaddress.ip_address(ip.args[0])
        except ValueError:
            raise ctx.error(f"invalid --on-ip {ip.args[0]!r}", ip) from None
        if (addr.version == 4) != (ctx.family == "ip"):
            raise ctx.error(f"--on-ip {ip.args[0]!r} is not of this table's family", ip)
        if addr.is_unspecified:
            addr = None  # 0.0.0.0 / :: means the packet's own destination
    kw = {}
    if mark is not None:
        v, m = _val(ctx, mark, V.parse_value_mask, mark.args[0])
        kw = {"mark_value": v, "mark_mask": m}
    return TargetResult((), ir.TProxy(ctx.family, addr, p or None, **kw))


def tproxy_fallback(rule: ir.Rule, ctx) -> ir.Rule:
    """The drop half of iptables' TPROXY (nft's tproxy lets the packet go on when no socket is
    found): the same matches, then drop.  Exact only when evaluating the matches twice gives
    the same answer, i.e. none of them keeps state."""
    for m in rule.matches:
        if isinstance(m, ir.STATEFUL_MATCHES):
            raise ctx.error(f"TPROXY after a stateful match ({type(m).__name__}) cannot be "
                            "expressed exactly: nft needs a second rule for the drop", None, True)
    return ir.Rule(rule.matches, (), ir.Drop(), rule.comment, rule.loc)


def _build_connlimit(opts, ctx):
    """--connlimit-above N matches when the key has more than N connections, --connlimit-upto N
    while it has at most N; '!' swaps them.  The key is the source address (or --connlimit-daddr
    the destination) cut to --connlimit-mask bits."""
    width = 32 if ctx.family == "ip" else 128
    count = above = None
    prefix, field = width, "saddr"
    for o in opts:
        if o.name in ("--connlimit-upto", "--connlimit-above"):
            count = _val(ctx, o, V.parse_int, o.args[0], 0, 2**32 - 1, "connection count")
            above = (o.name == "--connlimit-above") != o.negate
        elif o.name == "--connlimit-mask":
            prefix = _val(ctx, o, V.parse_int, o.args[0], 0, width, "prefix length")
        elif o.name in ("--connlimit-saddr", "--connlimit-daddr"):
            field = o.name[-5:]
    if count is None:
        raise ctx.error("connlimit needs --connlimit-upto or --connlimit-above",
                        opts[0] if opts else None)
    return [ir.ConnLimit(field, prefix, count, above)]


def _t_connmark_shift(base):
    """--left/--right-shift-mark N (xt_CONNMARK revision 2): set mode shifts the new ctmark,
    save and restore the masked source mark."""
    def build(opts, ctx):
        shifts = [o for o in opts if o.name in ("--left-shift-mark", "--right-shift-mark")]
        res = base([o for o in opts if o not in shifts], ctx)
        if not shifts:
            return res
        if len(shifts) > 1:
            raise ctx.error("CONNMARK takes one of --left-shift-mark and --right-shift-mark",
                            shifts[1])
        o = shifts[0]
        n = _val(ctx, o, V.parse_int, o.args[0], 0, 31, "shift")
        n = n if o.name == "--left-shift-mark" else -n
        if len(res.statements) != 1:
            raise ctx.error(f"CONNMARK {o.name} with more than one action", o)
        return TargetResult((attrs.evolve(res.statements[0], shift=n),), res.verdict)
    return build


def _t_synproxy(opts, ctx):
    raise ctx.error("SYNPROXY cannot be expressed exactly in nftables: nft's synproxy also "
                    "answers SYN and ACK segments with other flags (SYN-ACK, FIN-ACK), which "
                    "the xt target lets pass after its checksum check",
                    opts[0] if opts else None, True)


def _build_dccp(base):
    def build(opts, ctx):
        rest = [o for o in opts if o.name != "--dccp-types"]
        # a type test already needs the header: no 'any port' placeholder for a bare module
        out = base(rest, ctx) if rest or len(rest) == len(opts) else []
        for o in opts:
            if o.name == "--dccp-types":
                out.append(_fm("dccp type", dccp_types(ctx, o), o.negate))
        return out
    return build


# libxt_sctp's chunk names -> nft's
SCTP_CHUNKS = {
    "DATA": "data", "INIT": "init", "INIT_ACK": "init-ack", "SACK": "sack",
    "HEARTBEAT": "heartbeat", "HEARTBEAT_ACK": "heartbeat-ack", "ABORT": "abort",
    "SHUTDOWN": "shutdown", "SHUTDOWN_ACK": "shutdown-ack", "ERROR": "error",
    "COOKIE_ECHO": "cookie-echo", "COOKIE_ACK": "cookie-ack", "ECN_ECNE": "ecne",
    "ECN_CWR": "cwr", "SHUTDOWN_COMPLETE": "shutdown-complete", "I_DATA": "i-data",
    "RE_CONFIG": "re-config", "PAD": "pad", "ASCONF": "asconf", "ASCONF_ACK": "asconf-ack",
    "FORWARD_TSN": "forward-tsn", "I_FORWARD_TSN": "i-forward-tsn"}


def _sctp_chunks(ctx, o) -> list:
    """--chunk-types all|any|only TYPE[:FLAGS],...  Exact in nft: every listed type present
    (`all`, or `any` of one type), each without flag tests: `sctp chunk T exists`; negated,
    one type: `missing`."""
    how, types = o.args[0].lower(), o.args[1]
    if how not in ("all", "any", "only"):
        raise ctx.error(f"--chunk-types needs all, any or only, not {o.args[0]!r}", o)
    names = []
    for item in types.split(","):
        name, _, flags = item.partition(":")
        if name.upper() in ("ALL", "NONE"):
            raise ctx.error(f"--chunk-types {name} cannot be expressed exactly in nftables "
                            "(it is a statement about every chunk type)", o, True)
        if name.upper() not in SCTP_CHUNKS:
            raise ctx.error(f"unknown SCTP chunk type {name!r}", o)
        if flags:
            raise ctx.error("--chunk-types with flags cannot be expressed exactly in nftables: "
                            "xt_sctp tests the flags of every chunk of the type, nft's sctp "
                            "chunk only the first one", o, True)
        names.append(SCTP_CHUNKS[name.upper()])
    if how == "only":
        raise ctx.error("--chunk-types only cannot be expressed exactly in nftables: it needs "
                        "\"no chunk of any other type\", unknown types included", o, True)
    if how == "any" and len(set(names)) > 1:
        raise ctx.error("--chunk-types any with several types cannot be expressed exactly in "
                        "one nft rule (an OR of chunk tests)", o, True)
    if o.negate and len(set(names)) > 1:
        raise ctx.error("! --chunk-types with several types cannot be expressed exactly in one "
                        "nft rule (an OR of missing chunks)", o, True)
    return [_fm(f"sctp chunk {n}", ("missing" if o.negate else "exists",))
            for n in dict.fromkeys(names)]


def _build_cluster(opts, ctx):
    """xt_cluster's options as libxt_cluster checks them: total nodes and hash seed are
    required, one of --cluster-local-node / --cluster-local-nodemask (both 1-32, as libxtables
    ranges them; only these two take '!'), and the node(s) must exist."""
    for o in opts:
        if o.negate and o.name not in ("--cluster-local-node", "--cluster-local-nodemask"):
            raise ctx.error(f"cluster {o.name} cannot be negated", o)
    total, seed = _one(opts, "--cluster-total-nodes"), _one(opts, "--cluster-hash-seed")
    node, mask = _one(opts, "--cluster-local-node"), _one(opts, "--cluster-local-nodemask")
    first = opts[0] if opts else None
    for name, o in (("--cluster-total-nodes", total), ("--cluster-hash-seed", seed)):
        if o is None:
            raise ctx.error(f"cluster needs {name}", first)
    if node is not None and mask is not None:
        raise ctx.error("cluster: --cluster-local-node cannot be used together with "
                        "--cluster-local-nodemask", mask)
    if node is None and mask is None:
        raise ctx.error("cluster needs --cluster-local-node or --cluster-local-nodemask", first)
    n = _val(ctx, total, V.parse_int, total.args[0], 1, 32, "--cluster-total-nodes")
    s = _val(ctx, seed, V.parse_int, seed.args[0], 0, 2**32 - 1, "--cluster-hash-seed")
    which = node or mask
    v = _val(ctx, which, V.parse_int, which.args[0], 1, 32, which.name)
    if node is not None:
        if v > n:
            raise ctx.error("--cluster-local-node must be <= --cluster-total-nodes", node)
        v = 1 << (v - 1)
    elif v >> n:
        raise ctx.error("--cluster-local-nodemask too big for --cluster-total-nodes", mask)
    return [ir.Cluster(n, v, s, which.negate)]


def _build_sctp(base):
    def build(opts, ctx):
        rest = [o for o in opts if o.name != "--chunk-types"]
        out = base(rest, ctx)
        for o in opts:
            if o.name == "--chunk-types":
                out += _sctp_chunks(ctx, o)
        return out
    return build


def register():
    from fwc.frontends.iptables_ext import MATCHES, TARGETS, Ext
    c = TARGETS["CONNMARK"]
    TARGETS["CONNMARK"] = Ext(c.name, {**c.options, "--left-shift-mark": 1,
                                       "--right-shift-mark": 1}, _t_connmark_shift(c.build),
                              c.aliases)
    sc = MATCHES["sctp"]
    MATCHES["sctp"] = Ext(sc.name, {**sc.options, "--chunk-types": 2}, _build_sctp(sc.build),
                          sc.aliases)
    d = MATCHES["dccp"]
    MATCHES["dccp"] = Ext(d.name, {**d.options, "--dccp-types": 1, "--dccp-option": 1},
                          _build_dccp(d.build), d.aliases)
    _t("SYNPROXY", {"--sack-perm": 0, "--timestamp": 0, "--wscale": 1, "--mss": 1,
                    "--ecn": 0}, _t_synproxy)
    _m("ah", {"--ahspi": 1, "--ahlen": 1, "--ahres": 0}, _build_ah)
    _m("esp", {"--espspi": 1}, _spi_only("esp spi", "--espspi", 32))
    _m("ipcomp", {"--ipcompspi": 1, "--compres": 0}, _build_ipcomp)
    _m("frag", {"--fragid": 1, "--fraglen": 1, "--fragres": 0, "--fragfirst": 0,
                "--fragmore": 0, "--fraglast": 0}, _build_frag)
    _m("rt", {"--rt-type": 1, "--rt-segsleft": 1, "--rt-len": 1, "--rt-0-res": 0,
              "--rt-0-addrs": 1, "--rt-0-not-strict": 0}, _build_rt)
    _m("hbh", {"--hbh-len": 1, "--hbh-opts": 1}, _build_opts_hdr("hbh"))
    _m("dst", {"--dst-len": 1, "--dst-opts": 1}, _build_opts_hdr("dst"))
    _m("mh", {"--mh-type": 1}, _build_mh)
    _m("realm", {"--realm": 1}, _build_realm)
    _m("devgroup", {"--src-group": 1, "--dst-group": 1}, _build_devgroup)
    _m("cpu", {"--cpu": 1}, _build_cpu)
    _m("cgroup", {"--cgroup": 1, "--path": 1}, _build_cgroup)
    _m("ecn", {"--ecn-ip-ect": 1, "--ecn-tcp-ece": 0, "--ecn-tcp-cwr": 0}, _build_ecn)
    _m("tcpmss", {"--mss": 1}, _build_tcpmss)
    _m("connbytes", {"--connbytes": 1, "--connbytes-dir": 1, "--connbytes-mode": 1},
       _build_connbytes)
    _m("connlabel", {"--label": 1, "--set": 0}, _build_connlabel)
    _m("cluster", {"--cluster-total-nodes": 1, "--cluster-local-node": 1,
                   "--cluster-local-nodemask": 1, "--cluster-hash-seed": 1}, _build_cluster)
    _m("quota", {"--quota": 1}, _build_quota)
    _m("connlimit", {"--connlimit-upto": 1, "--connlimit-above": 1, "--connlimit-mask": 1,
                     "--connlimit-saddr": 0, "--connlimit-daddr": 0}, _build_connlimit)
    _m("time", {"--datestart": 1, "--datestop": 1, "--timestart": 1, "--timestop": 1,
                "--weekdays": 1, "--monthdays": 1, "--contiguous": 0, "--localtz": 0,
                "--kerneltz": 0, "--utc": 0}, _build_time)
    _t("CLASSIFY", {"--set-class": 1}, _t_classify)
    _t("AUDIT", {"--type": 1}, _t_audit)
    _t("TEE", {"--gateway": 1, "--oif": 1}, _t_tee)
    _t("TPROXY", {"--on-port": 1, "--on-ip": 1, "--tproxy-mark": 1}, _t_tproxy)
