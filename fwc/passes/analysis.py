"""Conservative facts about rules that the passes share.

Every function here may answer "don't know" (False for the positive questions); a pass only
rewrites when the answer is a proven yes, so an unknown construct can cost speed, never meaning.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional

from fwc import ir

STATEFUL_MATCHES = ir.STATEFUL_MATCHES
# statements that only observe (their order still matters, their presence is a side effect)
ENDS_CHAIN = (ir.Accept, ir.Drop, ir.Reject, ir.Goto, ir.Return, ir.Queue, ir.Snat, ir.Dnat,
              ir.Masquerade, ir.Redirect, ir.Netmap)
# packet properties no statement of a later rule can change (inlining may re-test them)
IMMUTABLE_MATCHES = (ir.Proto, ir.Address, ir.Interface, ir.Fragment, ir.Port, ir.TcpFlags,
                     ir.TcpOption, ir.Icmp, ir.PktType, ir.Mac, ir.AddrType, ir.Length)
EST_REL = frozenset({"ESTABLISHED", "RELATED"})
REAL_STATES = frozenset({"INVALID", "ESTABLISHED", "RELATED", "NEW", "UNTRACKED"})


def is_stateful(rule: ir.Rule) -> bool:
    return any(isinstance(m, STATEFUL_MATCHES) for m in rule.matches) or \
        any(isinstance(s, ir.SetUpdate) for s in rule.statements) or \
        any(isinstance(m, ir.SetMatch) and m.name is not None for m in rule.matches)


def ends_chain(rule: ir.Rule) -> bool:
    """Whenever the rule matches, evaluation of this chain stops (and never comes back)."""
    return isinstance(rule.verdict, ENDS_CHAIN)


def no_effect(rule: ir.Rule) -> bool:
    """Matching the rule changes nothing: no statements, no verdict, nothing stateful."""
    return not rule.statements and rule.verdict in (None, ir.Continue()) and not is_stateful(rule)


def describe(rule: ir.Rule) -> str:
    loc = rule.loc
    return str(loc) if loc != ir.NOLOC else "(no location)"


# ----------------------------------------------------------------------------- values


def addr_intervals(values: Iterable[ir.Addr]) -> list[tuple[int, int, int]]:
    """(version, lo, hi) per value."""
    out = []
    for v in values:
        if isinstance(v, ir.AddrRange):
            out.append((v.version, int(v.lo), int(v.hi)))
        else:
            out.append((v.version, int(v.network_address), int(v.broadcast_address)))
    return out


def merge_intervals(ivs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-adjacent intervals covering exactly `ivs`."""
    out: list[list[int]] = []
    for lo, hi in sorted(ivs):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def _covered(inner: list[tuple[int, int]], outer: list[tuple[int, int]]) -> bool:
    merged = merge_intervals(outer)
    return all(any(lo <= a and b <= hi for lo, hi in merged) for a, b in merge_intervals(inner))


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(x <= hi and lo <= y for x, y in a for lo, hi in b)


def addr_values(version: int, ivs: list[tuple[int, int]]) -> tuple[ir.Addr, ...]:
    """Canonical address values for merged intervals: a prefix when exact, else a range."""
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    out: list[ir.Addr] = []
    for lo, hi in merge_intervals(ivs):
        nets = list(ipaddress.summarize_address_range(cls(lo), cls(hi)))
        out.append(nets[0] if len(nets) == 1 else ir.AddrRange(cls(lo), cls(hi)))
    return tuple(out)


def port_values(ranges: Iterable[ir.Range]) -> tuple[ir.Range, ...]:
    return tuple(ir.Range(lo, hi) for lo, hi in merge_intervals((r.lo, r.hi) for r in ranges))


def addr_version(m: ir.Address) -> Optional[int]:
    vs = {v.version for v in m.values}
    return vs.pop() if len(vs) == 1 else None


# ----------------------------------------------------------------------------- implication


def implies(a: ir.Match, b: ir.Match) -> bool:
    """Every packet satisfying match `a` satisfies match `b` (stateless matches only)."""
    if isinstance(a, STATEFUL_MATCHES) or isinstance(b, STATEFUL_MATCHES):
        return False
    if a == b:
        return True
    if isinstance(a, ir.Port) and isinstance(b, ir.Proto) and not b.negate:
        return ir.L4_PROTOS.get(a.proto) in b.protos  # a port match requires its protocol
    if type(a) is not type(b) or getattr(a, "negate", False) or getattr(b, "negate", False):
        return False
    if isinstance(a, ir.Address):
        if a.field != b.field:
            return False
        if len(a.values) == 1 and len(b.values) == 1 and \
                not isinstance(a.values[0], ir.AddrRange) and \
                not isinstance(b.values[0], ir.AddrRange):
            x, y = a.values[0], b.values[0]
            return x.version == y.version and x.subnet_of(y)
        ia, ib = addr_intervals(a.values), addr_intervals(b.values)
        return all(_covered([(lo, hi)], [(l2, h2) for v2, l2, h2 in ib if v2 == v])
                   for v, lo, hi in ia)
    if isinstance(a, ir.Port):
        return a.proto == b.proto and a.field == b.field and \
            _covered([(r.lo, r.hi) for r in a.ranges], [(r.lo, r.hi) for r in b.ranges])
    if isinstance(a, ir.Proto):
        return a.protos <= b.protos
    if isinstance(a, ir.CtState):
        return a.states <= REAL_STATES and a.states <= b.states
    return False


def rule_covers(earlier: ir.Rule, later: ir.Rule, stateless: bool = False) -> bool:
    """Every packet matching `later` also matches `earlier` (stateless `earlier` only;
    `stateless`: the caller knows it is)."""
    if not stateless and is_stateful(earlier):
        return False
    return all(any(implies(mb, ma) for mb in later.matches) for ma in earlier.matches)


# ----------------------------------------------------------------------------- disjointness


def _matches_disjoint(a: ir.Match, b: ir.Match) -> bool:
    """No packet satisfies both `a` and `b` (proven; False = don't know)."""
    na, nb = getattr(a, "negate", False), getattr(b, "negate", False)
    if isinstance(a, ir.Address) and isinstance(b, ir.Address) and not na and not nb:
        va, vb = {v.version for v in a.values}, {v.version for v in b.values}
        if not (va & vb):
            return True  # an IPv4 and an IPv6 packet are never the same packet
        if a.field != b.field:
            return False
        ia, ib = addr_intervals(a.values), addr_intervals(b.values)
        return not any(v1 == v2 and x <= h and l <= y for v1, x, y in ia for v2, l, h in ib)
    if isinstance(a, ir.Port) and isinstance(b, ir.Port):
        if a.proto != b.proto:
            return True  # each requires its own protocol (even when negated)
        if na or nb or a.field != b.field or a.field == "port":
            return False
        return not _overlap([(r.lo, r.hi) for r in a.ranges], [(r.lo, r.hi) for r in b.ranges])
    if isinstance(a, ir.Proto) and isinstance(b, ir.Proto) and not na and not nb:
        return not (a.protos & b.protos)
    if isinstance(a, ir.Port) and isinstance(b, ir.Proto) and not nb:
        return ir.L4_PROTOS.get(a.proto) not in b.protos
    if isinstance(b, ir.Port) and isinstance(a, ir.Proto):
        return _matches_disjoint(b, a)
    if isinstance(a, ir.Port) and isinstance(b, ir.Icmp) and not nb:
        return True  # a port needs tcp/udp/..., an ICMP type needs icmp / icmpv6
    if isinstance(b, ir.Port) and isinstance(a, ir.Icmp):
        return _matches_disjoint(b, a)
    if isinstance(a, ir.CtState) and isinstance(b, ir.CtState) and not na and not nb:
        return a.states <= REAL_STATES and b.states <= REAL_STATES and not (a.states & b.states)
    if isinstance(a, ir.Interface) and isinstance(b, ir.Interface) and not na and not nb:
        return a.field == b.field and not a.name.endswith("+") and not b.name.endswith("+") \
            and a.name != b.name
    if isinstance(a, ir.Icmp) and isinstance(b, ir.Icmp) and not na and not nb:
        if a.family != b.family:
            return True
        if a.type is None or b.type is None:
            return False
        return a.type != b.type or not (a.codes.lo <= b.codes.hi and b.codes.lo <= a.codes.hi)
    return False


def matches_disjoint(a, b) -> bool:
    """No packet meets both matches (proven)."""
    return _matches_disjoint(a, b)


def never_matches(rule: ir.Rule) -> bool:
    """Two of the rule's own matches contradict each other (proven)."""
    ms = rule.matches
    return any(_matches_disjoint(x, y) for i, x in enumerate(ms) for y in ms[i + 1:])


def rules_disjoint(a: ir.Rule, b: ir.Rule) -> bool:
    """No packet matches both rules (proven from one pair of contradicting matches)."""
    return any(_matches_disjoint(x, y) for x in a.matches for y in b.matches)


def same_outcome(a: ir.Rule, b: ir.Rule) -> bool:
    """Both rules do exactly the same thing to a packet they both match, and end the chain."""
    return (a.statements == b.statements and a.verdict == b.verdict and ends_chain(a)
            and not is_stateful(a) and not is_stateful(b))


def commute(a: ir.Rule, b: ir.Rule) -> bool:
    """Swapping two adjacent rules keeps the meaning for every packet."""
    if is_stateful(a) or is_stateful(b):
        return False  # evaluating a stateful match is itself an effect
    if rules_disjoint(a, b):
        return True
    return same_outcome(a, b)


# ----------------------------------------------------------------------------- references


def chain_references(table: ir.Table) -> dict[str, list[tuple[str, int, str]]]:
    """chain name -> [(referring chain, rule index, 'jump'|'goto'|'vmap')]."""
    refs: dict[str, list] = {}
    for c in table.chains:
        for i, r in enumerate(c.rules):
            for name, kind in verdict_targets(r.verdict):
                refs.setdefault(name, []).append((c.name, i, kind))
    return refs


def verdict_targets(v) -> list[tuple[str, str]]:
    if isinstance(v, ir.Jump):
        return [(v.chain, "jump")]
    if isinstance(v, ir.Goto):
        return [(v.chain, "goto")]
    if isinstance(v, ir.VerdictMap):
        return [(t, "vmap") for _, vv in v.elements for t, _k in verdict_targets(vv)]
    return []
