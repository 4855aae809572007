"""nft-only IR nodes (from the nft front end) back to nft text: FieldMatch, SetMatch, CtCount,
SetUpdate, Continue, VerdictMap and NamedSet declarations."""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

from fwc import ir
from fwc.backends.nft_action import nat_flags
from fwc.backends.nft_ctx import RuleCtx, refuse
from fwc.backends.nft_match import ICMP_TYPES, ICMPV6_TYPES, PROTO_NAMES, fmt_addr, iface_literal, \
    neg, one_or_set
from fwc.backends.nft_names import quote
from fwc.conntrack.fields import time_range_ends

STRING_EXPRS = ("iifname", "oifname", "ibrname", "obrname", "sdifname", "iifkind", "oifkind",
                "ct helper", "osf name")
STRING_TYPES = ("ifname", "string")
CMP_OPS = {"lt": "<", "gt": ">", "le": "<=", "ge": ">="}
NEGATED_CMP = {"lt": "ge", "ge": "lt", "gt": "le", "le": "gt"}


IFNAME_EXPRS = ("iifname", "oifname", "ibrname", "obrname", "sdifname", "meta iif", "meta oif")


def is_string_expr(expr: str) -> bool:
    return expr.endswith(STRING_EXPRS) or (expr.startswith("osf ") and expr.endswith((" version", " name")))


def string_kind(expr: str):
    """How fmt_value writes the expression's values: "ifname" (the IR's final `+` wildcard is
    nft's `*`), True (a plain string) or False (not a string)."""
    if expr.endswith(IFNAME_EXPRS):
        return "ifname"
    return is_string_expr(expr)


def type_string_kind(t: str):
    """string_kind for a set's declared `type` word."""
    return "ifname" if t == "ifname" else t in STRING_TYPES


def fmt_value(v, string) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, ir.Range):
        return str(v.lo) if v.lo == v.hi else f"{v.lo}-{v.hi}"
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network, ir.AddrRange)):
        return fmt_addr(v)
    if isinstance(v, str):
        if string == "ifname":
            lit = iface_literal(v)
            if lit is None:
                raise refuse(f"interface name {v!r}", "nft 1.0.6 reads a backslash or a double "
                             "quote in it differently")
            return lit
        if string:
            lit = quote(v)
            if lit is None:
                raise refuse(f"string {v!r}", "nft 1.0.6 strings cannot hold a double quote")
            return lit
        return v
    raise refuse(f"nft value {v!r}")


def mask_text(m: ir.FieldMatch) -> str:
    """nft parses a mask as a value of the field's type: IPv6 masks must be addresses
    (added by helper tx for non-contiguous iptables netmasks)."""
    if m.expr in ("ip6 saddr", "ip6 daddr"):
        return str(ipaddress.IPv6Address(m.mask))
    if m.expr in ("ip saddr", "ip daddr"):
        return str(ipaddress.IPv4Address(m.mask))
    return f"{m.mask:#x}"


# numbers nft writes by name in its listings (readable output; the same values read back)
_SYMBOL_NAMES = {"icmp type": ICMP_TYPES, "icmpv6 type": ICMPV6_TYPES}


def render_fieldmatch(m: ir.FieldMatch) -> list[list[str]]:
    string = string_kind(m.expr)
    key = m.expr
    if m.xor is not None:
        key = f"{key} ^ {m.xor:#x}"
    if m.mask is not None:
        key = f"{key} & {mask_text(m)}"
    names = _SYMBOL_NAMES.get(" ".join(m.expr.split())) if m.mask is None and m.xor is None \
        and m.op == "eq" else None
    vals = [names[v] if names and type(v) is int and v in names else
            _time_text(v) if m.expr in ("meta hour", "meta time") and isinstance(v, str) else
            fmt_value(v, string) for v in m.values]
    if m.op in CMP_OPS:
        op = NEGATED_CMP[m.op] if m.negate else m.op
        return [[f"{key} {CMP_OPS[op]} {vals[0]}"]]
    if m.op == "any":
        return [[f"{key} {'! ' if m.negate else ''}{','.join(vals)}"]]
    if m.op != "eq":
        raise refuse(f"nft relation {m.op}")
    if (m.mask is not None or m.xor is not None or m.expr in _BITMASKS) and len(vals) == 1:
        # (on a bitmask a bare value is a bit test: `ct state new|invalid` is "either bit")
        return [[f"{key} {'!=' if m.negate else '=='} {vals[0]}"]]
    return [[f"{key} {neg(m.negate)}{one_or_set(vals)}"]]


_BITMASKS = frozenset({"ct state", "ct status", "tcp flags", "ct event"})


def _time_text(v: str) -> str:
    """`meta hour` / `meta time` strings as nft reads them: quoted, a range end by end."""
    ends = time_range_ends(v)
    if ends:
        return f"{quote(ends[0])}-{quote(ends[1])}"
    return quote(v) or v


def element_text(elem: tuple, string_at: Callable[[int], bool],
                 proto_at: Callable[[int], bool] = lambda i: False) -> str:
    return " . ".join(PROTO_NAMES.get(v, str(v)) if proto_at(i) and type(v) is int
                      else fmt_value(v, string_at(i)) for i, v in enumerate(elem))


PROTO_KEYS = frozenset({"meta l4proto", "ip protocol", "ip6 nexthdr", "ct original protocol",
                        "ct reply protocol", "ct protocol"})


_CT_ADDR = re.compile(r"^ct (original|reply) (saddr|daddr)$")


def _concat_key(key: str, i: int, m: ir.SetMatch) -> str:
    """In a concatenation nft needs `ct original ip saddr`: the family, read from the elements."""
    hit = _CT_ADDR.match(key)
    if hit is None or len(m.keys) == 1:
        return key
    fams = {ir.ip_family(e[i]) for e in m.elements if not isinstance(e[i], (int, str))}
    if len(fams) != 1:
        raise refuse(f"'{key}' in a concatenation", "nft needs its family (ip or ip6)")
    return f"ct {hit.group(1)} {fams.pop()} {hit.group(2)}"


def map_key_text(key: str, i: int, elements: list, ctx: RuleCtx) -> str:
    """A map key as nft needs it: `ct original ip daddr`, the family read from the elements
    (or the table's family)."""
    hit = _CT_ADDR.match(key)
    if hit is None:
        return key
    fams = {ir.ip_family(e[i]) for e in elements if not isinstance(e[i], (int, str))}
    if not fams and ctx.family in ("ip", "ip6"):
        fams = {ctx.family}
    if len(fams) != 1:
        raise refuse(f"'{key}' as a map key", "nft needs its family (ip or ip6)")
    return f"ct {hit.group(1)} {fams.pop()} {hit.group(2)}"


def render_setmatch(m: ir.SetMatch, ctx: RuleCtx) -> list[list[str]]:
    if m.name is not None:
        keys = " . ".join(m.keys)
        return [[f"{keys} {neg(m.negate)}@{ctx.set_name(m.name)}"]]
    keys = " . ".join(_concat_key(k, i, m) for i, k in enumerate(m.keys))
    strings = [string_kind(k) for k in m.keys]
    protos = [k in PROTO_KEYS for k in m.keys]  # `tcp . 53` reads better than `6 . 53`
    elems = [element_text(e, lambda i: strings[i], lambda i: protos[i]) +
             element_stmts_text(m.element_stmts, i)
             for i, e in enumerate(m.elements)]
    return [[f"{keys} {neg(m.negate)}{{ {', '.join(elems)} }}"]]


def element_stmts_text(per_element: tuple, i: int) -> str:
    """` counter packets P bytes B` after element i when it carries its own counter."""
    if not per_element:
        return ""
    out = ""
    for st in per_element[i]:
        if not isinstance(st, ir.Counter):
            raise refuse(f"per-element {ir.construct_name(st)}")
        out += f" counter packets {st.packets} bytes {st.bytes}"
    return out


def render_ctcount(m: ir.CtCount) -> list[list[str]]:
    return [[f"ct count {'over ' if m.over else ''}{m.count}"]]


def render_setlimit(m: ir.SetLimit, ctx: RuleCtx) -> list[list[str]]:
    over = "over " if m.above else ""
    return [[f"update @{ctx.set_name(m.set)} {{ {' . '.join(m.keys)} limit rate {over}"
             f"{m.rate}/{m.unit} burst {m.burst} packets }}"]]


def render_setupdate(s: ir.SetUpdate, ctx: RuleCtx) -> str:
    if s.op not in ("add", "update", "delete"):
        raise refuse(f"set operation {s.op}")
    timeout = f" timeout {s.timeout}" if s.timeout else ""
    return f"{s.op} @{ctx.set_name(s.set)} {{ {' . '.join(s.keys)}{timeout} }}"


def simple_verdict(v, ctx: RuleCtx) -> str:
    if isinstance(v, ir.Accept):
        return "accept"
    if isinstance(v, ir.Drop):
        return "drop"
    if isinstance(v, ir.Return):
        return "return"
    if isinstance(v, ir.Continue):
        return "continue"
    if isinstance(v, ir.Jump):
        return f"jump {ctx.chain_name(v.chain)}"
    if isinstance(v, ir.Goto):
        return f"goto {ctx.chain_name(v.chain)}"
    raise refuse(f"{ir.construct_name(v)} inside a verdict map")


def render_vmap(v: ir.VerdictMap, ctx: RuleCtx) -> str:
    masks = v.key_masks or (None,) * len(v.keys)
    keys = " . ".join(k if m is None else f"{k} & {m:#x}" for k, m in zip(v.keys, masks))
    if v.name is not None:
        return f"{keys} vmap @{ctx.set_name(v.name)}"
    if v.element_stmts:
        # `KEY counter : verdict` in an anonymous map is what nft >= 1.1 lists, but nft 1.0.6
        # refuses to read it back ("missing statement in map declaration")
        raise refuse("per-element counters in a verdict map",
                     "nft 1.0.6 cannot load them in an anonymous map")
    strings = [string_kind(k) for k in v.keys]
    elems = [f"{element_text(k, lambda i: strings[i])} : {simple_verdict(verdict, ctx)}"
             for k, verdict in v.elements]
    return f"{keys} vmap {{ {', '.join(elems)} }}"


def named_set_lines(s: ir.NamedSet, name: str, ctx: RuleCtx) -> list[str]:
    kind = "map" if s.data else "set"
    typeof = any(" " in t for t in s.types)
    key = " . ".join(s.types)
    decl = f"typeof {key}" if typeof else f"type {key}"
    if s.data:
        decl += f" : {s.data}"
    lines = [f"\t{kind} {name} {{", f"\t\t{decl}"]
    flags = s.flags - {"auto-merge"}  # (a property of its own in nft's syntax)
    if flags:
        lines.append(f"\t\tflags {','.join(sorted(flags))}")
    if "auto-merge" in s.flags:
        lines.append("\t\tauto-merge")
    if s.timeout:
        lines.append(f"\t\ttimeout {s.timeout}")
    if s.gc_interval:
        lines.append(f"\t\tgc-interval {s.gc_interval}")
    if s.size is not None:
        lines.append(f"\t\tsize {s.size}")
    if s.counter:
        lines.append("\t\tcounter")
    if s.comment:
        lit = quote(s.comment.replace('"', "'"))
        lines.append(f"\t\tcomment {lit}")
    strings = [string_kind(t) if typeof else type_string_kind(t) for t in s.types]
    protos = [t == "inet_proto" or t in PROTO_KEYS for t in s.types]
    if s.elements:
        elems = []
        for e, (tmo, exp) in zip(s.elements, ir.padded_timeouts(s.element_timeouts,
                                                                 len(s.elements))):
            opts = (f" timeout {tmo}" if tmo else "") + (f" expires {exp}" if exp else "")
            if s.data:
                k, val = e
                if s.data == "verdict":
                    shown = simple_verdict(val, ctx)
                elif isinstance(val, tuple):  # (a concatenated value: nat maps' address . port)
                    shown = " . ".join(fmt_value(x, type_string_kind(t))
                                       for x, t in zip(val, s.data.split(" . ")))
                else:
                    shown = fmt_value(val, type_string_kind(s.data))
                elems.append(f"{element_text(k, lambda i: strings[i])}{opts} : {shown}")
            else:
                elems.append(element_text(e, lambda i: strings[i], lambda i: protos[i]) + opts)
        lines.append(f"\t\telements = {{ {', '.join(elems)} }}")
    lines.append("\t}")
    return lines


def _one_addr(t: ir.NatTarget):
    a = t.addr
    if a is None or isinstance(a, ir.AddrRange) or a.num_addresses != 1:
        raise refuse("a nat map element with an address range or without an address",
                     "fwc writes single-address nat maps only")
    return a.network_address


def render_natmap(v: ir.NatMap, ctx: RuleCtx) -> str:
    """`dnat ip to KEYS map { k : addr }`, `dnat ip addr . port to KEYS map { k : addr . port }`,
    `redirect to :KEYS map { k : port }` (or `map @name`)."""
    keys = " . ".join(v.keys)
    fam = f" {v.family}" if v.kind != "redirect" and (ctx.family == "inet" or v.name is None) \
        else ""
    if v.name is not None:
        target = f"{keys} map @{ctx.set_name(v.name)}"
        return (f"{v.kind} to :{target}" if v.kind == "redirect"
                else f"{v.kind}{fam} to {target}") + nat_flags(v.flags)
    strings = [string_kind(k) for k in v.keys]
    protos = [k in PROTO_KEYS for k in v.keys]
    with_ports = {t.ports is not None for _, t in v.elements}
    if v.kind != "redirect" and len(with_ports) > 1:
        raise refuse("a nat map whose elements set a port only for some keys",
                     "nft maps hold one data type")
    elems = []
    for key, t in v.elements:
        if t.ports is not None and t.ports.lo != t.ports.hi:
            raise refuse("a nat map element with a port range", "fwc writes single ports only")
        if v.kind == "redirect":
            data = str(t.ports.lo)
        else:
            data = str(_one_addr(t)) + (f" . {t.ports.lo}" if t.ports is not None else "")
        elems.append(f"{element_text(key, lambda i: strings[i], lambda i: protos[i])} : {data}")
    body = f"{keys} map {{ {', '.join(elems)} }}"
    if v.kind == "redirect":
        return f"redirect to :{body}{nat_flags(v.flags)}"
    addr_port = " addr . port" if True in with_ports else ""
    return f"{v.kind}{fam}{addr_port} to {body}{nat_flags(v.flags)}"
