"""nft-flavoured IR (from the nft front end) in the terms iptables has, one packet family at a
time: a rule becomes the rules that mean the same for that family's packets, or none when it
cannot match them.

- `meta nfproto ipv4|ipv6`, `ip version 4`, `ip6 version 6`: the rule belongs to that family;
- `ip protocol N` (IPv4's protocol field, what `-p` tests there): Proto;
- `iif lo` / `oif lo`: `-i lo` / `-o lo` (the loopback device is never renamed or re-created);
- `icmp|icmpv6 type { a, b }`, `icmpv6 type . icmpv6 code { a . 0, b . 1 }`,
  `meta l4proto { tcp, udp }`, address lists and one-field
  address or port sets (anonymous, or a named set of constant elements): one rule per type,
  per protocol, per prefix, per port range.  The pieces match
  disjoint packets (overlapping prefixes are merged first), so each packet still meets the
  rule's statements and verdict at most once; rules with stateful matches (limit, quota, ...)
  are not split, since each piece would keep its own state.
Anything else is left as it is, for the emitter to write or refuse.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

import attrs

from fwc import ir
from fwc.backends.iptables_tail import first_header as tail_first_header
from fwc.conntrack.fields import ICMP_TYPES, ICMPV6_TYPES
from fwc.errors import Unsupported

MAX_PIECES = 4096
_ADDR_KEYS = {"ip saddr": ("ip", "saddr"), "ip daddr": ("ip", "daddr"),
              "ip6 saddr": ("ip6", "saddr"), "ip6 daddr": ("ip6", "daddr")}
_PORT_KEYS = {f"{p} {f}": (p, f) for p in ("tcp", "udp", "sctp", "dccp", "udplite")
              for f in ("sport", "dport")}
_VERSION = {"ip version": ("ip", 4), "ip6 version": ("ip6", 6)}


_ICMP_PAIRS = {("icmp type", "icmp code"): "ip", ("icmpv6 type", "icmpv6 code"): "ip6"}


def _byte(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255


def _plain_eq(m) -> bool:
    return m.op == "eq" and m.mask is None and m.xor is None


def _set_elements(m: ir.SetMatch, sets: dict):
    """The element tuples of a set match, or None when they are not constant."""
    if m.name is None:
        return list(m.elements)
    s = sets.get(m.name)
    if not isinstance(s, ir.NamedSet) or s.data is not None or \
            s.flags & {"dynamic", "timeout"} or s.timeout:
        return None
    return [e if isinstance(e, tuple) else (e,) for e in s.elements]


def _set_values(m: ir.SetMatch, sets: dict):
    """The one-field values of a set match, or None when they are not constant."""
    elems = _set_elements(m, sets)
    return None if elems is None else [e[0] for e in elems]


def _disjoint_prefixes(values, fam: str):
    nets = []
    for v in values:
        if isinstance(v, ir.AddrRange):
            nets += ipaddress.summarize_address_range(v.lo, v.hi)
        elif isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            nets.append(v)
        elif isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            nets.append(ipaddress.ip_network(v))
        else:
            return None
    # (the other family's values never match this family's packets)
    return list(ipaddress.collapse_addresses(n for n in nets if ir.ip_family(n) == fam))


def _disjoint_ranges(values):
    rs = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, ir.Range)):
            return None
        rs.append(v if isinstance(v, ir.Range) else ir.Range(v, v))
    rs.sort(key=lambda r: r.lo)
    out: list[ir.Range] = []
    for r in rs:
        if out and r.lo <= out[-1].hi + 1:
            out[-1] = ir.Range(out[-1].lo, max(out[-1].hi, r.hi))
        else:
            out.append(r)
    return out


def _icmp_types(m: ir.FieldMatch, fam: str):
    names = ICMP_TYPES if fam == "ip" else ICMPV6_TYPES
    out = []
    for v in m.values:
        if isinstance(v, str) and v.lower() in names:
            out.append(names[v.lower()])
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255:
            out.append(v)
        elif isinstance(v, ir.Range) and 0 <= v.lo <= v.hi <= 255:
            out.extend(range(v.lo, v.hi + 1))
        else:
            return None
    return sorted(set(out))


def _alternatives(m, fam: str, sets: dict) -> Optional[list]:
    """None: `m` stays as it is.  Else the list of match tuples, one of which the packet must
    meet (disjoint); an empty list: `m` never holds in family `fam`."""
    t = ir.family_test(m)
    if t is not None:
        return [()] if t == fam else []
    if isinstance(m, ir.Port) and not m.negate and \
            ir.multiport_slots(m.ranges) > ir.MULTIPORT_SLOTS:
        # more than one -m multiport holds: disjoint runs, one rule each
        merged = _disjoint_ranges(m.ranges)
        return [(ir.Port(m.proto, m.field, c),) for c in ir.multiport_chunks(merged)]
    if isinstance(m, ir.FieldMatch):
        expr = " ".join(m.expr.split())
        if expr in _VERSION and _plain_eq(m) and len(m.values) == 1:
            vfam, version = _VERSION[expr]
            if vfam != fam:
                return []  # nft tests the family first, negated or not
            return [()] if (m.values[0] == version) != m.negate else []
        if expr == "socket transparent" and _plain_eq(m) and not m.negate and \
                m.values in ((1,), (ir.Range(0, 1),)):
            # fwc's own nft forms of -m socket --nowildcard [--transparent] (the front end
            # reads them so, kernel-checked in test_socket_kernel.py)
            return [(ir.Socket(transparent=m.values == (1,), nowildcard=True),)]
        if expr == "ip6 nexthdr" and fam == "ip":
            return []  # (an IPv4 packet has no IPv6 header: nft's test fails)
        if expr == "ip6 nexthdr" and tail_first_header(m, fam) is not None:
            # its protocol is the rule's too (so that other protocol tests meet it)
            return [(ir.Proto(frozenset(m.values)), m)]
        if expr == "ip protocol" and _plain_eq(m) and \
                all(isinstance(v, int) and not isinstance(v, bool) for v in m.values):
            if fam != "ip":
                return []
            return [(ir.Proto(frozenset(m.values), m.negate),)]
        if expr in ("ip dscp", "ip6 dscp") and _plain_eq(m) and \
                all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 64
                    for v in m.values):
            # (in inet tables `ip dscp` also tests the family: -m dscp of that family)
            if (expr == "ip dscp") != (fam == "ip"):
                return []
            if len(m.values) == 1:
                return [(ir.Dscp(m.values[0], m.negate),)]
            if not m.negate:
                return [(ir.Dscp(v),) for v in sorted(set(m.values))]
        if expr in ("meta iifname", "meta oifname", "iifname", "oifname") and _plain_eq(m) \
                and not m.negate and len(m.values) > 1 and _disjoint_names(m.values):
            field = "iifname" if "iif" in expr else "oifname"
            return [(ir.Interface(field, _iface(v)),) for v in m.values]
        if expr in ("meta iif", "meta oif") and _plain_eq(m) and m.values == ("lo",):
            field = "iifname" if expr == "meta iif" else "oifname"
            return [(ir.Interface(field, "lo", m.negate),)]
        if expr in ("icmp type", "icmpv6 type") and _plain_eq(m) and not m.negate:
            tfam = "ip" if expr == "icmp type" else "ip6"
            if tfam != fam:
                return []
            types = _icmp_types(m, fam)
            if types is None:
                return None
            return [(ir.Icmp(fam, t),) for t in types]
    if isinstance(m, ir.Address) and len(m.values) > 1 and not m.negate:
        nets = _disjoint_prefixes(m.values, fam)
        return None if nets is None else [(ir.Address(m.field, (n,)),) for n in nets]
    if isinstance(m, ir.Proto) and len(m.protos) > 1 and not m.negate:
        return [(ir.Proto(frozenset({p})),) for p in sorted(m.protos)]
    if isinstance(m, ir.SetMatch) and not m.negate and not m.element_stmts and \
            tuple(" ".join(k.split()) for k in m.keys) in _ICMP_PAIRS:
        tfam = _ICMP_PAIRS[tuple(" ".join(k.split()) for k in m.keys)]
        if tfam != fam:
            return []
        elems = _set_elements(m, sets)
        if elems is None or not all(isinstance(e, tuple) and len(e) == 2 and
                                    all(_byte(x) for x in e) for e in elems):
            return None
        return [(ir.Icmp(fam, t, ir.Range(c, c)),) for t, c in sorted(set(elems))]
    if isinstance(m, ir.SetMatch) and len(m.keys) > 1 and not m.negate and \
            not m.element_stmts:
        return _concat_alternatives(m, fam, sets)
    if isinstance(m, ir.SetMatch) and len(m.keys) == 1 and not m.negate and \
            not m.element_stmts:
        key = " ".join(m.keys[0].split())
        values = _set_values(m, sets)
        if values is None:
            return None
        if key in _ADDR_KEYS:
            afam, field = _ADDR_KEYS[key]
            if afam != fam:
                return []
            nets = _disjoint_prefixes(values, fam)
            if nets is None:
                return None
            return [(ir.Address(field, (n,)),) for n in nets]
        if key in _PORT_KEYS:
            proto, field = _PORT_KEYS[key]
            rs = _disjoint_ranges(values)
            if rs is None:
                return None
            return [(ir.Port(proto, field, tuple(rs)),)] if rs else []
    return None


def _concat_alternatives(m: ir.SetMatch, fam: str, sets: dict) -> Optional[list]:
    """A concatenated set (`ip saddr . tcp dport { 10.0.0.1 . 22, ... }`) as one alternative
    per element, each testing every part; None when a part has no iptables test or two
    elements may hold for one packet (each alternative becomes a rule, whose statements a
    packet must meet once)."""
    keys = [" ".join(k.split()) for k in m.keys]
    if len(keys) == 2 and keys[1] in ("th dport", "th sport") and m.name is None:
        return None  # (proto_port_pieces: one rule per protocol, the ports in a multiport)
    elems = _set_elements(m, sets)
    if elems is None or not all(isinstance(e, tuple) and len(e) == len(m.keys) for e in elems):
        return None
    out, kept = [], []
    for e in elems:
        tests = [_vmap_key_match(k, x, fam) for k, x in zip(keys, e)]
        if None in tests:
            return None
        if _NEVER in tests:
            continue
        if any(all(_may_overlap(a, b) for a, b in zip(e, other)) for other in kept):
            return None
        kept.append(e)
        out.append(tuple(t for t in tests if t is not _ALWAYS))
    return out


def _may_overlap(a, b) -> bool:
    """Whether one packet's field may hold both element values `a` and `b`."""
    def span(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return (v, v)
        if isinstance(v, ir.Range):
            return (v.lo, v.hi)
        if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return (v.version, int(v.network_address)), (v.version, int(v.broadcast_address))
        if isinstance(v, ir.AddrRange):
            return (v.lo.version, int(v.lo)), (v.hi.version, int(v.hi))
        return None
    sa, sb = span(a), span(b)
    if sa is not None and sb is not None:
        return not (sa[1] < sb[0] or sb[1] < sa[0])
    if isinstance(a, str) and isinstance(b, str):
        x, y = a.rstrip("*"), b.rstrip("*")
        return a == b or (a.endswith("*") and b.startswith(x)) or (b.endswith("*") and a.startswith(y))
    return True


def _iface(name: str) -> str:
    return name[:-1] + "+" if name.endswith("*") else name


def _disjoint_names(values) -> bool:
    """Interface names no name can meet twice: exact names, or patterns (`eth*`) that no
    other value starts with."""
    if not all(isinstance(v, str) and "*" not in v[:-1] and v for v in values):
        return False
    if len(set(values)) != len(values):
        return False
    for a in values:
        for b in values:
            if a is not b and a.endswith("*") and b.startswith(a[:-1]):
                return False
    return True


_TH_PROTOS = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}


def _th_as_port(piece: tuple) -> tuple:
    """`th dport 53` in a piece with one positive protocol is that protocol's port test
    (`meta l4proto { tcp, udp } th dport 53`, split per protocol)."""
    protos = [m for m in piece if isinstance(m, ir.Proto) and not m.negate and len(m.protos) == 1]
    if len(protos) != 1 or next(iter(protos[0].protos)) not in _TH_PROTOS:
        return piece
    name = _TH_PROTOS[next(iter(protos[0].protos))]
    out = []
    for m in piece:
        expr = " ".join(m.expr.split()) if isinstance(m, ir.FieldMatch) else ""
        if expr in ("th dport", "th sport") and _plain_eq(m) and all(
                isinstance(v, (int, ir.Range)) and not isinstance(v, bool) for v in m.values):
            ranges = _disjoint_ranges(m.values)
            if ranges is not None:
                m = ir.Port(name, expr.split()[1], tuple(ranges), m.negate)
        out.append(m)
    return tuple(out)


# verdict-map keys iptables can test: each element's value becomes that key's match
_ALWAYS, _NEVER = "every packet of the family", "no packet of the family"
_FAMILY_KEYS = {"meta protocol": {"ip": "ip", "ip6": "ip6", 0x0800: "ip", 0x86DD: "ip6"},
                "meta nfproto": {"ipv4": "ip", "ipv6": "ip6", 2: "ip", 10: "ip6"}}


def _vmap_key_match(key: str, value, fam: str):
    """The match of `key == value` for family `fam`'s packets, _ALWAYS, _NEVER, or None
    when iptables has no test for it."""
    if key == "ct state" and isinstance(value, str) and value.upper() in ir.CT_STATES:
        return ir.CtState(frozenset({value.upper()}))
    if key in _PORT_KEYS and isinstance(value, (int, ir.Range)) and not isinstance(value, bool):
        proto, field = _PORT_KEYS[key]
        r = value if isinstance(value, ir.Range) else ir.Range(value, value)
        return ir.Port(proto, field, (r,))
    if key in ("th dport", "th sport") and isinstance(value, (int, ir.Range)) and \
            not isinstance(value, bool):
        return ir.FieldMatch(key, (value,))  # (a port once the element's protocol is known)
    if key in _ADDR_KEYS and isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network,
                                                ir.AddrRange)):
        return ir.Address(_ADDR_KEYS[key][1], (value,))
    if key in ("meta l4proto", "ip protocol") and _byte(value):
        if key == "ip protocol" and fam != "ip":
            return _NEVER  # (an IPv6 packet has no ip header: nft's lookup never finds it)
        return ir.Proto(frozenset({value}))
    if key in ("iifname", "oifname", "meta iifname", "meta oifname") and isinstance(value, str):
        return ir.Interface("iifname" if "iif" in key else "oifname", _iface(value))
    if key in _FAMILY_KEYS and isinstance(value, (str, int)) and not isinstance(value, bool):
        return _ALWAYS if _FAMILY_KEYS[key].get(value) == fam else _NEVER
    return None


def _expand_vmap(rule: ir.Rule, fam: str, sets: dict) -> Optional[list]:
    """A verdict map, or a NAT map (`dnat to ip daddr . tcp dport map { ... }`: each element's
    NAT target), as one rule per element (the keys are disjoint: nft refuses overlapping
    elements), or None when a key is not one iptables tests.  A concatenation's element
    tests each of its parts (`ip protocol . th dport vmap { tcp . 22 : accept }`)."""
    v = rule.verdict
    if isinstance(v, ir.NatMap):
        if v.kind != "redirect" and v.family != fam:
            return []  # (a packet of the other family finds no element)
    elif not isinstance(v, ir.VerdictMap) or v.key_masks or v.element_stmts:
        return None
    elements = v.elements
    if v.name is not None:
        s = sets.get(v.name)
        if s is None or not isinstance(s, ir.NamedSet) or s.counter:
            return None
        elements = s.elements
    keys = [" ".join(k.split()) for k in v.keys]
    out = []
    for e in elements:
        if not (isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], tuple)
                and len(e[0]) == len(keys)) or isinstance(e[1], ir.VerdictMap):
            return None
        tests = [_vmap_key_match(k, x, fam) for k, x in zip(keys, e[0])]
        if None in tests:
            return None
        if _NEVER in tests:
            continue
        verdict = None if isinstance(e[1], ir.Continue) else e[1]
        if isinstance(v, ir.NatMap):
            verdict = ir.nat_map_verdict(v, e[1])
            if verdict is None:
                return None
        out.append(attrs.evolve(rule, matches=rule.matches + tuple(
            t for t in tests if t is not _ALWAYS), verdict=verdict))
    return [x for x in out if x.verdict is not None]  # (`continue`, no statements: nothing)


def _icmp_and_tos(rule: ir.Rule, fam: str) -> ir.Rule:
    """What fwc's nft backend writes for iptables forms, read back: `icmp type X icmp code Y`
    (`--icmp-type X/Y`), `icmp type . icmp code != { X . Y }` (`! --icmp-type X/Y`) and, in
    IPv4, `@nh,8,8 & MASK == V` (`-m tos --tos V/MASK`)."""
    ms = list(rule.matches)
    changed = False
    for i, m in enumerate(ms):
        if isinstance(m, ir.SetMatch) and m.negate and not m.element_stmts and m.name is None \
                and tuple(" ".join(k.split()) for k in m.keys) in _ICMP_PAIRS \
                and len(m.elements) == 1 and all(_byte(x) for x in m.elements[0]):
            tfam = _ICMP_PAIRS[tuple(" ".join(k.split()) for k in m.keys)]
            if tfam == fam:
                t, c = m.elements[0]
                ms[i], changed = ir.Icmp(fam, t, ir.Range(c, c), True), True
        elif isinstance(m, ir.FieldMatch) and " ".join(m.expr.split()) == "@nh,8,8" and \
                fam == "ip" and m.op == "eq" and m.xor is None and len(m.values) == 1 and \
                _byte(m.values[0]) and (m.mask is None or _byte(m.mask)):
            mask = 0xFF if m.mask is None else m.mask
            if not m.values[0] & ~mask:
                ms[i], changed = ir.Tos(m.values[0], mask, m.negate), True
        elif isinstance(m, ir.FieldMatch) and " ".join(m.expr.split()) in \
                ("icmp code", "icmpv6 code") and _plain_eq(m) and not m.negate and \
                len(m.values) == 1 and _byte(m.values[0]):
            tfam = "ip" if m.expr.startswith("icmp ") else "ip6"
            typed = [k for k, x in enumerate(ms) if isinstance(x, ir.Icmp) and not x.negate
                     and x.family == tfam and x.type is not None and x.codes == ir.Range(0, 255)]
            if len(typed) == 1:
                k = typed[0]
                c = m.values[0]
                ms[k] = ir.Icmp(tfam, ms[k].type, ir.Range(c, c))
                ms[i], changed = None, True
    if not changed:
        return rule
    return attrs.evolve(rule, matches=tuple(x for x in ms if x is not None))


@attrs.frozen
class Split:
    """A rule with a stateful match that splits: `pieces` (match tuples, disjoint) each jump to
    one chain of its own holding `shared`, the rule without the split matches, so its state
    (a limit's bucket, a quota) stays one for all pieces."""

    pieces: tuple[tuple, ...]
    shared: ir.Rule


@attrs.frozen
class Exits:
    """A rule with a negated set that no iptables match tests in one rule (`ip protocol != {
    tcp, udp }`, `ip saddr != { a, b }`): the rules `heads` (the matches before the set) jump
    to a chain of its own, where each of `exits` returns (the packet is in the set, so the rule
    does not match it) and then `rest`, the rule after the set, decides.  The matches run in
    the order nft runs them, each once."""

    heads: tuple[ir.Rule, ...]
    exits: tuple[tuple, ...]
    rest: tuple[ir.Rule, ...]


# negated sets of these fields: nft's test needs the header (`icmp type != { a, b }` is "ICMP
# and no such type"), so the rest of the rule tests the protocol; interfaces always exist
_EXIT_FIELDS = {"meta iifname": None, "meta oifname": None, "iifname": None, "oifname": None,
                "icmp type": ("ip", 1), "icmpv6 type": ("ip6", 58)}
_NO_FIELD = "the set's field does not exist in this family"


def _negated_exits(m, fam: str, sets: dict):
    """(the positive tests a negated set is the union of, the tests the negation still needs
    (its header)) when iptables has no negated form of the whole set; _NO_FIELD when the set's
    field does not exist in this family (nft's test then fails, negated or not); else None."""
    if not getattr(m, "negate", False):
        return None
    if isinstance(m, ir.Proto) and len(m.protos) > 1 and 0 not in m.protos:
        # (with 0, `-p 0` is every protocol; the full set is ir.NEVER, written as such)
        return [(ir.Proto(frozenset({p})),) for p in sorted(m.protos)], ()
    expr = " ".join(m.expr.split()) if isinstance(m, ir.FieldMatch) else ""
    if expr == "ip protocol" and _plain_eq(m) and len(m.values) > 1 and 0 not in m.values \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in m.values):
        if fam != "ip":
            return _NO_FIELD
        return [(ir.Proto(frozenset({p})),) for p in sorted(m.values)], ()
    if isinstance(m, ir.Address) and len(m.values) > 1:
        if all(ir.ip_family(v) != fam for v in m.values):
            return _NO_FIELD
        return [(ir.Address(m.field, (v,)),) for v in m.values], ()
    if isinstance(m, ir.Port) and ir.multiport_slots(m.ranges) > ir.MULTIPORT_SLOTS and \
            m.field != "port":
        return [(ir.Port(m.proto, m.field, c),)
                for c in ir.multiport_chunks(_disjoint_ranges(m.ranges))], \
            (ir.Proto(frozenset({ir.L4_PROTOS[m.proto]})),)
    if isinstance(m, ir.SetMatch) and len(m.keys) > 1 and not m.element_stmts:
        # `ip daddr . tcp dport != @s`: nft tests the keys' headers first (IPv4, TCP), so the
        # negation needs them; any other part must be a field every packet has
        keys = [" ".join(k.split()) for k in m.keys]
        if any(_ADDR_KEYS[k][0] != fam for k in keys if k in _ADDR_KEYS):
            return _NO_FIELD
        protos = {_PORT_KEYS[k][0] for k in keys if k in _PORT_KEYS}
        if len(protos) > 1 or not all(k in _ADDR_KEYS or k in _PORT_KEYS or
                                      k in ("iifname", "oifname", "meta iifname",
                                            "meta oifname") for k in keys):
            return None
        alts = _concat_alternatives(attrs.evolve(m, negate=False), fam, sets)
        if not alts:
            return None
        return alts, tuple(ir.Proto(frozenset({ir.L4_PROTOS[p]})) for p in protos)
    if expr in _EXIT_FIELDS and _plain_eq(m) and len(m.values) > 1 and \
            _alternatives(m, fam, sets) is None:
        need = _EXIT_FIELDS[expr]
        if need is not None and need[0] != fam:
            return _NO_FIELD
        alts = _alternatives(attrs.evolve(m, negate=False), fam, sets)
        if not alts:
            return None
        return alts, (() if need is None else (ir.Proto(frozenset({need[1]})),))
    return None


def _with_exits(rule: ir.Rule, fam: str, sets: dict):
    """Exits for `rule` (see there), [] when it never matches here, None when not needed or
    not possible."""
    found = [(i, ex) for i, m in enumerate(rule.matches)
             if (ex := _negated_exits(m, fam, sets)) is not None]
    if any(ex is _NO_FIELD for _, ex in found):
        return []
    if len(found) != 1 or isinstance(rule.verdict, (ir.Goto, ir.Return)):
        return None  # (one chain deeper, goto and return would mean something else)
    i, (exits, needs) = found[0]
    heads = lower_rule(attrs.evolve(rule, matches=rule.matches[:i], statements=(),
                                    verdict=ir.Accept()), fam, sets)
    rest = lower_rule(attrs.evolve(rule, matches=needs + rule.matches[i + 1:]), fam, sets)
    return Exits(tuple(heads), tuple(exits), tuple(rest))


def lower_rule(rule: ir.Rule, fam: str, sets: dict, allow_split: bool = False):
    """The rules meaning `rule` for family `fam`'s packets ([] when none of them matches); with
    allow_split, a Split where a rule with a stateful match needs several rules, or Exits
    where a negated set does."""
    rule = _icmp_and_tos(rule, fam)
    if allow_split:
        got = _with_exits(rule, fam, sets)
        if got is not None:
            return got  # (an Exits, or [] when the rule never matches this family)
    expanded = _expand_vmap(rule, fam, sets)
    if expanded is not None:
        if any(isinstance(m, ir.STATEFUL_MATCHES) for m in rule.matches) or rule.statements:
            # (each element's rule would test the state, or run the statements, again)
            raise Unsupported("a verdict map in a rule with statements or a stateful match",
                              rule.loc)
        out: list = []
        for x in expanded:
            got = lower_rule(x, fam, sets, False)
            out.extend(got)
        return out
    choices, split_at = [], []
    for i, m in enumerate(rule.matches):
        alt = _alternatives(m, fam, sets)
        if alt is None:
            choices.append([(m,)])
        elif not alt:
            return []
        else:
            choices.append(alt)
            if len(alt) > 1:
                split_at.append(i)
    pieces = [()]
    for alt in choices:
        pieces = [p + a for p in pieces for a in alt]
        if len(pieces) > MAX_PIECES:
            raise Unsupported(f"a rule that iptables needs more than {MAX_PIECES} rules for",
                              rule.loc)
    stateful = [i for i, m in enumerate(rule.matches) if isinstance(m, ir.STATEFUL_MATCHES)]
    if len(pieces) > 1 and stateful:
        # exact through a chain of its own when every split match comes before the stateful
        # ones (nft evaluates in order: the state only sees packets the set let through) and
        # the verdict means the same one chain deeper (not goto / return)
        if not allow_split or max(split_at) > min(stateful) or \
                isinstance(rule.verdict, (ir.Goto, ir.Return)):
            raise Unsupported("a set, or several ICMP types, in a rule with a stateful match "
                              "(iptables needs one rule per element, each with its own state)",
                              rule.loc)
        split = [choices[i] for i in split_at]
        heads = [()]
        for alt in split:
            heads = [p + a for p in heads for a in alt]
        # (the other matches as lowered: `ip protocol icmp` is -p icmp there too)
        rest = tuple(x for i, alt in enumerate(choices) if i not in split_at for x in alt[0])
        rest = _one_protocol_test(rest)
        if rest is None:
            return []
        return Split(tuple(heads), attrs.evolve(rule, matches=_th_as_port(rest)))
    merged = (_one_protocol_test(p) for p in pieces)
    return [attrs.evolve(rule, matches=_th_as_port(p)) for p in merged if p is not None]


def _one_protocol_test(piece: tuple) -> Optional[tuple]:
    """The piece's positive protocol tests as one (iptables takes one -p), None when they
    contradict: `ip protocol tcp` and the `meta l4proto tcp` nft adds for `reject with tcp
    reset` are both tcp in IPv4."""
    protos = [m for m in piece if isinstance(m, ir.Proto) and not m.negate]
    if len(protos) < 2:
        return piece
    common = frozenset.intersection(*(m.protos for m in protos))
    if not common:
        return None
    first = piece.index(protos[0])
    return tuple(ir.Proto(common) if k == first else m for k, m in enumerate(piece)
                 if k == first or not (isinstance(m, ir.Proto) and not m.negate))


def describe(m) -> str:
    """nft-like text of a match the emitter cannot write, for its error message."""
    if isinstance(m, ir.FieldMatch):
        values = ", ".join(str(v) for v in m.values)
        values = f"{{ {values} }}" if len(m.values) > 1 else values
        op = {"eq": "", "lt": "< ", "gt": "> ", "le": "<= ", "ge": ">= ", "any": ""}[m.op]
        mask = f" & {m.mask:#x}" if m.mask is not None else ""
        return f"'{m.expr}{mask} {'!= ' if m.negate else ''}{op}{values}'"
    if isinstance(m, ir.SetMatch):
        what = f"@{m.name}" if m.name else "{ ... }"
        return f"'{' . '.join(m.keys)} {'!= ' if m.negate else ''}{what}'"
    return ir.construct_name(m)
