"""Matches as nft lookup keys: which IR matches can become one field of a set or verdict-map
lookup (`KEY { v1, v2 }`, `K1 . K2 { a . b }`, `KEY vmap { v : verdict }`), with which values.

A match is a key when the lookup of its values means exactly the match: non-negated, on a field
nft reads the same way the IR match does (an absent header or interface never matches either
way).  Values are nft values (fwc.ir.NftValue) that the nft backend writes and the simulator
reads back; `boxes` gives each as an interval so lookups can be checked for overlap.
"""

from __future__ import annotations

from typing import Optional

import attrs

from fwc import ir

PORT_PROTOS = ("tcp", "udp", "sctp", "dccp", "udplite")


@attrs.frozen
class Key:
    expr: str                  # nft expression text ("iifname", "ip saddr", "tcp dport" ...)
    values: tuple              # nft values; the match holds iff the field is one of them
    immutable: bool            # no statement can change the field (safe across a jump)


def key_of(m: ir.Match, family: str) -> Optional[Key]:
    """The lookup equivalent to match `m` in a table of `family`, or None."""
    if getattr(m, "negate", False):
        return None
    if isinstance(m, ir.Interface):
        if m.name.endswith(("+", "*")) or '"' in m.name or "\\" in m.name or not m.name:
            return None
        return Key(m.field, (m.name,), True)
    if isinstance(m, ir.Address):
        versions = {v.version for v in m.values}
        if len(versions) != 1:
            return None
        fam = "ip" if versions.pop() == 4 else "ip6"
        return Key(f"{fam} {m.field}", tuple(m.values), True)
    if isinstance(m, ir.Port):
        if m.field not in ("sport", "dport") or m.proto not in PORT_PROTOS:
            return None
        return Key(f"{m.proto} {m.field}",
                   tuple(r.lo if r.lo == r.hi else r for r in m.ranges), True)
    if isinstance(m, ir.Proto):
        expr = "ip protocol" if family == "ip" else "meta l4proto"
        return Key(expr, tuple(sorted(m.protos)), True)
    if isinstance(m, ir.Icmp):
        if m.type is None or (m.codes.lo, m.codes.hi) != (0, 255):
            return None
        return Key("icmp type" if m.family == "ip" else "icmpv6 type", (m.type,), True)
    if isinstance(m, ir.Mark) and m.mask == 0xFFFFFFFF:
        if m.kind == "ct" and m.value == 0:
            return None  # keep it simple: a connmark lookup on untracked packets never matches
        return Key("meta mark" if m.kind == "meta" else "ct mark", (m.value,), False)
    if isinstance(m, ir.CtState):
        if not m.states or not m.states <= frozenset(ir.CT_STATES):
            return None  # the virtual states SNAT/DNAT are status bits, not states
        return Key("ct state", tuple(s.lower() for s in sorted(m.states)), False)
    return None


def box(v) -> tuple:
    """A value as an interval: (lo, hi) of ints, or ('s', name) for names."""
    if isinstance(v, str):  # a name, also when it is all digits (interface "0")
        return ("s", v)
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, ir.Range):
        return (v.lo, v.hi)
    if isinstance(v, ir.AddrRange):
        return (v.version, int(v.lo), int(v.hi))
    if hasattr(v, "network_address"):
        return (v.version, int(v.network_address), int(v.broadcast_address))
    raise TypeError(v)


def boxes_overlap(a: tuple, b: tuple) -> bool:
    if a[0] == "s" or b[0] == "s":
        return a == b
    if len(a) == 3:
        return a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]
    return a[0] <= b[1] and b[0] <= a[1]


def elements_overlap(x: tuple, y: tuple) -> bool:
    """Two concatenated elements (one value per key) share a key tuple."""
    return all(boxes_overlap(box(a), box(b)) for a, b in zip(x, y))
