"""IR statements and verdicts -> nft statements."""

from __future__ import annotations

import ipaddress
from typing import Optional

from fwc import ir
from fwc.backends.nft_ctx import RuleCtx, refuse
from fwc.backends.nft_match import fmt_addr, fmt_range
from fwc.backends.nft_names import quote

LOG_LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
LOG_FLAGS = {"tcp-sequence": "tcp sequence", "tcp-options": "tcp options",
             "ip-options": "ip options", "uid": "skuid", "macdecode": "ether"}
FULL = 0xFFFFFFFF
CONNTRACK_PRIORITY = -200  # conntrack runs at this priority in prerouting and output


def text_literal(text: str, what: str) -> str:
    lit = quote(text)
    if lit is None:
        raise refuse(f"{what} {text!r}", "nft 1.0.6 strings cannot hold a double quote or a "
                     "control character")
    return lit


def render_log(s: ir.Log) -> str:
    out = ["log"]
    if s.prefix is not None:
        out.append(f"prefix {text_literal(s.prefix, 'log prefix')}")
    if s.level is not None:
        out.append(f"level {LOG_LEVELS[s.level]}")
    tcp = [f for f in ("tcp-sequence", "tcp-options") if f in s.flags]
    if tcp:
        out.append("flags tcp " + ",".join(LOG_FLAGS[f].split()[1] for f in tcp))
    for f in ("ip-options", "uid", "macdecode"):
        if f in s.flags:
            out.append(f"flags {LOG_FLAGS[f]}")
    unknown = s.flags - set(LOG_FLAGS)
    if unknown:
        raise refuse(f"log flag(s) {', '.join(sorted(unknown))}")
    return " ".join(out)


def render_nflog(s: ir.NfLog) -> str:
    out = [f"log group {s.group}"]
    if s.prefix is not None:
        out.append(f"prefix {text_literal(s.prefix, 'nflog prefix')}")
    if s.size is not None:
        out.append(f"snaplen {s.size}")
    if s.threshold is not None:
        out.append(f"queue-threshold {s.threshold}")
    return " ".join(out)


def masked_value(key: str, value: int, mask: int) -> str:
    """nft for `key` = (key & ~mask) ^ value."""
    if mask == FULL:
        return f"{key} set {value:#x}"
    keep = ~mask & FULL
    if value == 0:
        return f"{key} set {key} and {keep:#x}"
    op = "or" if value & keep == 0 else "xor"  # `or` reads as --set-mark; same bits here
    return f"{key} set {key} and {keep:#x} {op} {value:#x}"


def _shift_text(shift: int) -> str:
    return f"<< {shift}" if shift > 0 else f">> {-shift}"


def render_setmark(s: ir.SetMark) -> str:
    key = "meta mark" if s.kind == "meta" else "ct mark"
    if not s.shift:
        return masked_value(key, s.value, s.mask)
    if s.mask == FULL:  # a constant
        return f"{key} set {ir.shifted(s.value, s.shift):#x}"
    expr = masked_value(key, s.value, s.mask)[len(f"{key} set "):]
    return f"{key} set ({expr}) {_shift_text(s.shift)}"


def render_copymark(s: ir.CopyMark) -> str:
    dst, src = ("ct mark", "meta mark") if s.to == "ct" else ("meta mark", "ct mark")
    if s.dst_mask != FULL:
        raise refuse("CONNMARK --save-mark/--restore-mark with a mask",
                     "nft cannot merge bits of two marks")
    tail = "" if s.src_mask == FULL else f" and {s.src_mask:#x}"
    if s.shift:
        return f"{dst} set ({src}{tail}) {_shift_text(s.shift)}"
    return f"{dst} set {src}{tail}"


def rule_l4(rule: ir.Rule) -> Optional[str]:
    """The single transport protocol a rule is restricted to, if any."""
    for m in rule.matches:
        # protocol-dependent matches require their protocol even when negated (IR convention)
        if isinstance(m, ir.Port):
            return m.proto
        if isinstance(m, (ir.TcpFlags, ir.TcpOption)):
            return "tcp"
        if isinstance(m, ir.Proto) and not m.negate and len(m.protos) == 1:
            p = next(iter(m.protos))
            return {6: "tcp", 17: "udp"}.get(p)
        if isinstance(m, ir.FieldMatch) and m.expr in ("ip protocol", "ip6 nexthdr") and \
                m.op == "eq" and not m.negate and m.mask is None and m.xor is None and \
                len(m.values) == 1:  # (in inet tables: also the family)
            return {6: "tcp", 17: "udp", "tcp": "tcp", "udp": "udp"}.get(m.values[0])
    return None


def rule_l3(rule: ir.Rule) -> Optional[str]:
    """The one family (ip | ip6) the matches of an inet rule restrict it to, or None."""
    fams = ir.match_families(rule.matches)
    return next(iter(fams)) if len(fams) == 1 else None


def needs_tcp_reset_split(rule: ir.Rule) -> bool:
    """REJECT --reject-with tcp-reset drops non-TCP packets (no reset can be made); nft's
    `reject with tcp reset` only applies to TCP, so the rest needs an explicit drop."""
    v = rule.verdict
    return (isinstance(v, ir.Reject) and v.with_ is not None
            and v.with_.lower() in ("tcp-reset", "tcp-rst") and rule_l4(rule) != "tcp")


_BITOPS = {"&": "and", "|": "or", "^": "xor", "<<": "<<", ">>": ">>"}


def fieldset_value(v, ctx: Optional[RuleCtx] = None) -> str:
    """The nft text of a FieldSet value (read from nft, so nft's own meaning is kept)."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, ir.FieldRef):
        return v.expr
    if isinstance(v, ir.BitOp):
        return f"({fieldset_value(v.left, ctx)} {_BITOPS[v.op]} {fieldset_value(v.right, ctx)})"
    if isinstance(v, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and \
            v.prefixlen == v.max_prefixlen:  # (an address as the front end reads a value)
        return str(v.network_address)
    if isinstance(v, ir.MapValue) and ctx is not None:
        from fwc.backends.nft_native import element_text, map_key_text, string_kind
        keys = " . ".join(map_key_text(k, i, [e for e, _ in v.elements], ctx)
                          for i, k in enumerate(v.keys))
        if v.name is not None:
            return f"{keys} map @{ctx.set_name(v.name)}"
        strings = [string_kind(k) for k in v.keys]
        elems = [f"{element_text(k, lambda i: strings[i])} : {fieldset_value(val, ctx)}"
                 for k, val in v.elements]
        return f"{keys} map {{ {', '.join(elems)} }}"
    raise refuse(f"setting a field from {type(v).__name__}")


def render_ipset_update(s: ir.IpsetUpdate, ctx: RuleCtx) -> str:
    """xt_SET as nft's set statement: `add` (`update` with --exist, which refreshes the
    timeout of an element already there) or `delete`, keyed on the packet's addresses."""
    fam = ctx.l3 or (ctx.family if ctx.family in ("ip", "ip6") else None)
    if fam is None:
        raise refuse(f"SET --{s.op}-set {s.name} in a rule for both IPv4 and IPv6")
    key = " . ".join(f"{fam} {'saddr' if f == 'src' else 'daddr'}" for f in s.fields)
    if s.timeout is not None:
        key += f" timeout {s.timeout}s"
    verb = "delete" if s.op == "del" else ("update" if s.exist else "add")
    return f"{verb} @{ctx.set_name(s.name)} {{ {key} }}"


def render_statement(s: ir.Statement, ctx: RuleCtx, rule: ir.Rule, counters: bool) -> Optional[str]:
    if isinstance(s, ir.IpsetUpdate):
        return render_ipset_update(s, ctx)
    if isinstance(s, ir.Log):
        return render_log(s)
    if isinstance(s, ir.NfLog):
        return render_nflog(s)
    if isinstance(s, ir.SetMark):
        return render_setmark(s)
    if isinstance(s, ir.CopyMark):
        return render_copymark(s)
    if isinstance(s, ir.Notrack):
        return "notrack"
    if isinstance(s, ir.FieldSet):
        return f"{s.expr} set {fieldset_value(s.value, ctx)}"
    if isinstance(s, ir.CtZoneSet):
        return f"ct zone set {s.zone}"
    if isinstance(s, ir.CtHelperSet):
        if s.template and ctx.priorities and min(ctx.priorities) <= CONNTRACK_PRIORITY:
            # iptables CT attaches a template before conntrack; nft needs the conntrack entry
            raise refuse("CT --helper before conntrack (raw priority)",
                         "nft sets a helper on an existing conntrack entry only")
        l4 = rule_l4(rule)
        if l4 not in ("tcp", "udp"):
            raise refuse("CT --helper without a -p tcp/udp restriction",
                         "an nft ct helper object needs its protocol")
        return f"ct helper set \"{ctx.helper_object(s.name, l4)}\""
    if isinstance(s, ir.TcpMss):
        size = "rt mtu" if s.mss is None else str(s.mss)
        return f"tcp option maxseg size set {size}"
    if isinstance(s, ir.SetTtl):
        key = "ip ttl" if s.family == "ip" else "ip6 hoplimit"
        if s.op != "set":
            raise refuse(f"TTL/HL --{s.op}", "nft cannot add to a header field")
        return f"{key} set {s.value}"
    if isinstance(s, ir.SetDscp):
        l3 = ctx.l3 or rule_l3(rule)
        if l3 is None:
            raise refuse("DSCP in a rule serving IPv4 and IPv6")
        return f"{l3} dscp set {s.value:#04x}"
    if isinstance(s, ir.SetTos):
        l3 = ctx.l3 or rule_l3(rule)
        if l3 is None:
            raise refuse("TOS in a rule serving IPv4 and IPv6")
        return render_set_tos(s, l3)
    if isinstance(s, ir.Checksum):
        raise refuse("CHECKSUM", "nftables has no checksum-fill statement")
    if isinstance(s, ir.Trace):
        return "meta nftrace set 1"
    if isinstance(s, ir.NamedCounter):
        return f'counter name "{ctx.counter_name(s.name)}"'
    if isinstance(s, ir.Counter):
        if not s.packets and not s.bytes:
            return "counter"  # (what nft lists as packets 0 bytes 0 after the load)
        return f"counter packets {s.packets} bytes {s.bytes}"
    if isinstance(s, ir.SetUpdate):
        from fwc.backends.nft_native import render_setupdate
        return render_setupdate(s, ctx)
    from fwc.backends.nft_tail import render_tail_statement  # iptables long tail (helper tx)
    text = render_tail_statement(s, ctx)
    if text is not None:
        return text
    raise refuse(ir.construct_name(s))


def render_set_tos(s: ir.SetTos, l3: str) -> str:
    """TOS target: tos = (tos & ~mask) ^ value.  Bit by bit this splits into the DSCP (top six)
    and ECN (low two) fields; a field whose bits are all set or all kept is a constant `set`.
    nft 1.0.6 can only write constants into such sub-byte fields, so any other mask is written
    on IPv6 as one 16-bit word (version, traffic class, flow label bits; no header checksum)
    and refused on IPv4, where a raw write would not update the header checksum."""
    parts = []
    for field, shift, full in (("dscp", 2, 0x3F), ("ecn", 0, 0x3)):
        fmask, fval = (s.mask >> shift) & full, (s.value >> shift) & full
        if fmask == full:
            parts.append(f"{l3} {field} set {fval:#04x}" if field == "dscp" else
                         f"{l3} {field} set {fval}")
        elif fmask or fval:
            parts = None
            break
    if parts is not None:
        return " ".join(parts)  # empty: the target changes no bit
    if l3 != "ip6":
        raise refuse("TOS changing only some DSCP or ECN bits in IPv4",
                     "nft cannot update the header checksum of a raw write")
    keep = 0xF00F | ((~s.mask & 0xFF) << 4)  # version, flow label and the kept TC bits
    return f"@nh,0,16 set @nh,0,16 & {keep:#06x} ^ {(s.value & 0xFF) << 4:#06x}"


# --------------------------------------------------------------------------- verdicts

REJECT_IP = {"net-unreachable": "net-unreachable", "host-unreachable": "host-unreachable",
             "port-unreachable": "port-unreachable", "proto-unreachable": "prot-unreachable",
             "prot-unreachable": "prot-unreachable",  # the front end's (nft's) name
             "net-prohibited": "net-prohibited", "host-prohibited": "host-prohibited",
             "admin-prohibited": "admin-prohibited"}
REJECT_IP6 = {"no-route": "no-route", "adm-prohibited": "admin-prohibited",
              "admin-prohibited": "admin-prohibited", "addr-unreachable": "addr-unreachable",
              "port-unreachable": "port-unreachable",
              # ip6t_REJECT and nft_reject_ipv6 both call nf_send_unreach6 with the code
              "policy-fail": "policy-fail", "reject-route": "reject-route"}
# reasons with an icmpx name, usable for both families in inet tables
ICMPX = {"port-unreachable", "admin-prohibited", "no-route", "host-unreachable"}


def reject_reason(with_: str, l3) -> tuple[str, str]:
    """('ip'|'ip6'|'any', nft name) of an iptables --reject-with value; a bare name (without
    icmp-/icmp6-) is read in the rule's family (`l3`, None when it serves both)."""
    w = with_.lower()
    if w in ("tcp-reset", "tcp-rst"):
        return "any", "tcp reset"
    if w.startswith("icmp6-"):
        fam, name = "ip6", REJECT_IP6.get(w[6:])
    elif w.startswith("icmp-"):
        fam, name = "ip", REJECT_IP.get(w[5:])
    elif l3 is None:
        fam, name = "both", (w if w in ICMPX else None)
    else:
        fam, name = l3, (REJECT_IP if l3 == "ip" else REJECT_IP6).get(w)
    if name is None:
        raise refuse(f"--reject-with {with_}")
    return fam, name


def render_reject(v: ir.Reject, ctx: RuleCtx, rule: ir.Rule) -> str:
    if v.with_ is None:
        return "reject"
    l3 = ctx.l3 or (ctx.family if ctx.family != "inet" else None)
    if l3 is None and not (v.with_.lower() in ICMPX and v.with_.lower() != "host-unreachable"):
        # (an icmpx reason stays icmpx, as nft wrote it; else the family the rule requires)
        l3 = ir.required_family(rule.matches)
    fam, name = reject_reason(v.with_, l3)
    if fam == "any":  # without -p tcp the caller adds the tcp test and a drop for the rest
        return "reject with tcp reset"
    if l3 is None:  # inet rule for both families: only icmpx reasons mean the same in both
        if fam == "both" and name != "host-unreachable":
            return f"reject with icmpx type {name}"
        raise refuse(f"--reject-with {v.with_} for both IPv4 and IPv6")
    if fam != l3:
        raise refuse(f"--reject-with {v.with_} in an {l3} rule")
    if name == "port-unreachable" and ctx.family != "inet":
        return "reject"  # the nft default in ip and ip6 tables (icmpx's in inet)
    kw = "icmp" if l3 == "ip" else "icmpv6"
    return f"reject with {kw} type {name}"


def nat_target(t: ir.NatTarget) -> str:
    out = ""
    if t.addr is not None:
        if isinstance(t.addr, ir.AddrRange):
            lo, hi = t.addr.lo, t.addr.hi
        else:
            lo, hi = t.addr.network_address, t.addr.broadcast_address
            if t.addr.prefixlen == t.addr.max_prefixlen:
                hi = lo
        v6 = lo.version == 6
        a = f"[{lo}]" if v6 and t.ports else str(lo)
        if hi != lo:
            a += "-" + (f"[{hi}]" if v6 and t.ports else str(hi))
        out = a
    if t.ports is not None:
        out += f":{fmt_range(t.ports)}"
    return out


NAT_FLAGS = ("random", "fully-random", "persistent")


def nat_flags(flags) -> str:
    unknown = set(flags) - set(NAT_FLAGS)
    if unknown:
        raise refuse(f"NAT flag(s) {', '.join(sorted(unknown))}")
    names = [f for f in NAT_FLAGS if f in flags]
    return (" " + ",".join(names)) if names else ""


def nat_family_word(ctx: RuleCtx, addr) -> str:
    if ctx.family != "inet" or addr is None:
        return ""
    return " ip" if addr.version == 4 else " ip6"


def render_nat(v, ctx: RuleCtx, rule: ir.Rule) -> str:
    kind = "snat" if isinstance(v, ir.Snat) else "dnat"
    if len(v.to) != 1:
        raise refuse(f"{kind.upper()} with several --to ranges", "nft takes one range")
    t = v.to[0]
    if t.addr is None and kind == "snat":
        raise refuse("SNAT without an address")
    addr_version = t.addr
    if isinstance(t.addr, ir.AddrRange):
        addr_version = t.addr.lo
    fam = nat_family_word(ctx, addr_version)
    return f"{kind}{fam} to {nat_target(t)}{nat_flags(v.flags)}"


def render_verdict(v: Optional[ir.Verdict], ctx: RuleCtx, rule: ir.Rule) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, ir.Accept):
        return "accept"
    if isinstance(v, ir.Drop):
        return "drop"
    if isinstance(v, ir.Reject):
        return render_reject(v, ctx, rule)
    if isinstance(v, ir.Jump):
        return f"jump {ctx.chain_name(v.chain)}"
    if isinstance(v, ir.Goto):
        return f"goto {ctx.chain_name(v.chain)}"
    if isinstance(v, ir.Return):
        return "return"
    if isinstance(v, ir.Queue):
        flags = [f for f, on in (("bypass", v.bypass), ("fanout", v.fanout)) if on]
        tail = (" " + ",".join(flags)) if flags else ""
        return f"queue num {fmt_range(v.num)}{tail}"
    if isinstance(v, (ir.Snat, ir.Dnat)):
        return render_nat(v, ctx, rule)
    if isinstance(v, (ir.Masquerade, ir.Redirect)):
        kw = "masquerade" if isinstance(v, ir.Masquerade) else "redirect"
        ports = f" to :{fmt_range(v.ports)}" if v.ports is not None else ""
        return f"{kw}{ports}{nat_flags(v.flags)}"
    if isinstance(v, ir.Continue):
        return "continue"
    if isinstance(v, ir.VerdictMap):
        from fwc.backends.nft_native import render_vmap
        return render_vmap(v, ctx)
    if isinstance(v, ir.NatMap):
        from fwc.backends.nft_native import render_natmap
        return render_natmap(v, ctx)
    if isinstance(v, ir.Netmap):
        fam = "ip" if v.to.version == 4 else "ip6"
        kind = "snat" if v.field == "saddr" else "dnat"
        anyaddr = "0.0.0.0/0" if fam == "ip" else "::/0"
        # the prefix-map flag makes the kernel keep host bits: new = (old & ~mask) | to
        return (f"{kind} {fam} prefix to {fam} {v.field} map {{ {anyaddr} : {v.to} }}")
    from fwc.backends.nft_tail import render_tail_verdict  # iptables long tail (helper tx)
    text = render_tail_verdict(v, ctx)
    if text is not None:
        return text
    raise refuse(ir.construct_name(v))
