"""nft text for the IR nodes of the iptables long tail (Quota, Audit, SetPriority, Dup, TProxy).

Kept apart from the main nft backend modules: each render_* returns None for nodes it does not
own, so the dispatchers in nft_match / nft_action call it last."""

from __future__ import annotations

import ipaddress
from typing import Optional

from fwc import ir
from fwc.backends.nft_ctx import RuleCtx, refuse, rule_family


def render_tail_match(m, ctx: RuleCtx, rule: ir.Rule) -> Optional[list[list[str]]]:
    if isinstance(m, ir.Quota):
        return [[f"quota {'over ' if m.over else ''}{m.bytes} bytes"]]
    if isinstance(m, ir.ConnLimit):
        return [[render_connlimit(m, ctx, rule)]]
    if isinstance(m, ir.ConnLabel) and not m.negate:
        return [[f"ct label {m.bit}"]]
    if isinstance(m, ir.ConnLabelSet) and not m.negate:
        # set, then test: only an entry without room for labels still lacks it
        return [[f"ct label set {m.bit}", f"ct label {m.bit}"]]
    if isinstance(m, ir.Time):
        return [render_time(m, ctx)]
    if isinstance(m, ir.Recent):
        # an nft dynamic set keeps one timeout per element, no history of when it was seen,
        # and refuses new elements when full where xt_recent forgets its oldest address
        raise refuse(f"-m recent --{m.command}",
                     "an nftables set keeps no per-address hit history and does not forget its "
                     "oldest address when full, as xt_recent does")
    return None


CONNLIMIT_SET = "\0connlimit"  # prefix of the dynamic_set key that asks for a set of its own


def render_connlimit(m: ir.ConnLimit, ctx: RuleCtx, rule: ir.Rule) -> str:
    """xt_connlimit keeps, per rule, a tree of connection lists keyed by the masked address
    (and the conntrack zone, see nft.py); nft keeps a connection list in each element of a
    dynamic set: one set per rule, the element key being the masked address.  In an inet
    rule the family comes from its `meta nfproto` guard (how nft's own form reads back)."""
    fam = rule_family(ctx, rule)
    if fam is None or ctx.dynamic_set is None:
        raise refuse("connlimit in an inet rule serving both families")
    width = 32 if fam == "ip" else 128
    key = f"{fam} {m.field}"
    if m.prefix < width:
        zero = "0.0.0.0" if fam == "ip" else "::"
        key += f" and {ipaddress.ip_network(f'{zero}/{m.prefix}').netmask}"
    name = ctx.dynamic_set(f"{CONNLIMIT_SET}:{id(m)}:{fam}",
                           ("ipv4_addr" if fam == "ip" else "ipv6_addr",), None)
    return f"add @{name} {{ {key} ct count {'over ' if m.above else ''}{m.count} }}"


def priority_text(value: int) -> str:
    if value == 0:
        return "none"
    if value == 0xFFFFFFFF:
        return "root"
    return f"{value >> 16:x}:{value & 0xFFFF:x}"


def _tproxy_to(addr, port) -> str:
    a = "" if addr is None else (f"[{addr}]" if addr.version == 6 and port is not None
                                 else str(addr))
    p = "" if port is None else f":{port}"
    if addr is None and port is None:
        p = ":0"  # port 0: the packet's own destination port
    return f"to {a}{p}"


def render_tail_statement(s, ctx: RuleCtx) -> Optional[str]:
    if isinstance(s, ir.Synproxy):
        return "synproxy" + (f" mss {s.mss}" if s.mss is not None else "") + \
            (f" wscale {s.wscale}" if s.wscale is not None else "") + \
            (" timestamp" if s.timestamp else "") + (" sack-perm" if s.sack_perm else "")
    if isinstance(s, ir.TProxySet):
        if ctx.family not in ("inet", s.family):
            raise refuse(f"tproxy {s.family} in an {ctx.family} table")
        fam = f" {s.family}" if ctx.family == "inet" else ""
        return f"tproxy{fam} {_tproxy_to(s.addr, s.port)}"
    if isinstance(s, ir.Audit):
        return "log level audit"
    if isinstance(s, ir.SetPriority):
        return f"meta priority set {priority_text(s.value)}"
    if isinstance(s, ir.Dup):
        fam = "ip" if s.gateway.version == 4 else "ip6"
        if ctx.family == "inet":
            raise refuse("dup (TEE) in an inet table",
                         "nft 1.0.6 loads dup only in ip and ip6 tables: translate without --inet")
        if ctx.family != fam:
            raise refuse(f"dup to an {fam} gateway in an {ctx.family} table")
        dev = f' device "{s.device}"' if s.device is not None else ""
        return f"dup to {s.gateway}{dev}"
    return None


def render_tail_verdict(v, ctx: RuleCtx) -> Optional[str]:
    if not isinstance(v, ir.TProxy):
        return None
    if ctx.family not in ("inet", v.family):
        raise refuse(f"TPROXY for {v.family} in an {ctx.family} table")
    # in inet tables the family is named: packets of the other family do not match the rule
    fam = f" {v.family}" if ctx.family == "inet" else ""
    text = f"tproxy{fam} {_tproxy_to(v.addr, v.port)}"
    if v.mark_mask is not None:
        keep = ~v.mark_mask & 0xFFFFFFFF
        if keep == 0:
            text += f" meta mark set {v.mark_value:#x}"
        else:
            text += f" meta mark set meta mark & {keep:#x} ^ {v.mark_value:#x}"
    return text + " accept"


def render_time(m: ir.Time, ctx: RuleCtx) -> list[str]:
    """xt_time in UTC (fwc.timewindow explains the form).  Values are integer seconds, which nft
    reads without its own time zone."""
    from fwc import timewindow as tw
    words = []
    if tw.days_restricted(m):
        if ctx.time_set is None:
            raise refuse("-m time --weekdays/--monthdays here")
        name = ctx.time_set(tuple(tw.day_intervals(m)))
        words += [f"meta time @{name}", f"meta time != @{name}_ends"]
    else:
        if m.date_start > 0:
            words.append(f"meta time >= {m.date_start}")
        words.append(f"meta time < {m.date_stop + 1}")
    hours = tw.hour_ranges(m)
    if len(hours) == 1:
        words.append(f"meta hour {hours[0][0]}-{hours[0][1]}")
    elif hours:
        words.append("meta hour { " + ", ".join(f"{a}-{b}" for a, b in hours) + " }")
    return words
