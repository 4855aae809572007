"""Dead rules: a rule no packet can reach is removed, with a warning naming it.

A rule is dead when an earlier rule of the same chain matches every packet it matches (the
earlier rule has a subset of its conditions, none stateful) and always ends the chain (accept,
drop, reject, goto, return, queue, nat).  When a rule in between can change the packet (a mark
set, a jump), only earlier rules testing fields nothing changes (addresses, ports...) count.
An unconditional terminal rule makes every later rule dead.  Removing a dead rule changes nothing: it is never evaluated.
"""

from __future__ import annotations

from fwc import ir
from fwc.passes.analysis import (IMMUTABLE_MATCHES, addr_intervals, ends_chain, is_stateful,
                                 rule_covers)
from fwc.passes.notes import Explain, Notes

MAX_LOOKBACK = 64  # earlier terminal rules compared per rule (keeps huge chains linear)


def _signature(r: ir.Rule) -> frozenset:
    """What kinds of condition a rule tests; a covering rule tests a subset of them (a port
    match also stands for its protocol)."""
    sig = set()
    for m in r.matches:
        sig.add((type(m), getattr(m, "field", None)))
        if isinstance(m, ir.Port):
            sig.add((ir.Proto, None))
    return frozenset(sig)


def _hull(m) -> tuple | None:
    """(version, lo, hi) around all values of an Address (of one IP version) or Port match."""
    if isinstance(m, ir.Address):
        ivs = addr_intervals(m.values)
        if len({v for v, _, _ in ivs}) != 1:
            return None
        return ivs[0][0], min(lo for _, lo, _ in ivs), max(hi for _, _, hi in ivs)
    return (None, min(x.lo for x in m.ranges), max(x.hi for x in m.ranges)) if m.ranges else None


def _boxes(r: ir.Rule) -> dict:
    """key -> hull for each address field, and each (protocol, port field), the rule tests with
    exactly one positive match.  Only an Address match implies an Address match (a Port only a
    Port), so a rule covering this one tests a hull holding it there: two integer comparisons
    rule most candidates out before `rule_covers` (a 10,000-address blocklist: 5.3 s -> 0.9 s
    for all of -O)."""
    seen: dict = {}
    for m in r.matches:
        if isinstance(m, ir.Address):
            seen.setdefault(m.field, []).append(m)
        elif isinstance(m, ir.Port):
            seen.setdefault((m.proto, m.field), []).append(m)
    out = {}
    for key, ms in seen.items():
        if len(ms) == 1 and not ms[0].negate:
            hull = _hull(ms[0])
            if hull is not None:
                out[key] = hull
    return out


def _cannot_cover(ebox: dict, rbox: dict) -> bool:
    for field, (v, lo, hi) in ebox.items():
        got = rbox.get(field)
        if got is not None and (got[0] != v or got[1] < lo or got[2] > hi):
            return True
    return False


OBSERVING = (ir.Log, ir.NfLog, ir.Counter, ir.Audit)


def _may_change_packet(r: ir.Rule) -> bool:
    """Matching `r` and going on may change a field a later rule tests (mark, conntrack...)."""
    if _rewrites_pkttype(r):
        return True
    if ends_chain(r):  # nothing after it in this chain sees the changed packet
        return False
    return any(not isinstance(s, OBSERVING) for s in r.statements) or \
        isinstance(r.verdict, (ir.Jump, ir.VerdictMap, ir.TProxy, ir.NatMap))


def _rewrites_pkttype(r: ir.Rule) -> bool:
    """`r` may change pkt_type, which IMMUTABLE_MATCHES takes as fixed: -m cluster whenever it
    is evaluated (matched or not), `meta pkttype set` when the rule matches."""
    return any(isinstance(m, ir.Cluster) for m in r.matches) or \
        any(isinstance(s, ir.FieldSet) and s.expr == "meta pkttype" for s in r.statements)


_FIXED_BUT_PKTTYPE = tuple(t for t in IMMUTABLE_MATCHES if t is not ir.PktType)


def remove_dead_rules(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("dead", explain)
    tables = []
    for t in rs.tables:
        chains = []
        for c in t.chains:
            kept: list[ir.Rule] = []
            terminals: list[tuple] = []  # (rule, signature, boxes): kept stateless enders
            for r in c.rules:
                sig, box = _signature(r), _boxes(r)
                killer = next((e for e, esig, ebox in reversed(terminals[-MAX_LOOKBACK:])
                               if esig <= sig and not _cannot_cover(ebox, box)
                               and rule_covers(e, r, stateless=True)), None)
                if killer is not None:
                    why = ("after an unconditional" if not killer.matches else "shadowed by")
                    notes.warn(f"rule never matches ({why} rule at {killer.loc} in chain "
                               f"{c.name}); removed", r.loc)
                    continue
                kept.append(r)
                if _may_change_packet(r):
                    # a later packet state may differ from the one the earlier rules saw: only
                    # killers testing fields nothing changes still prove anything
                    fixed = _FIXED_BUT_PKTTYPE if _rewrites_pkttype(r) else IMMUTABLE_MATCHES
                    terminals = [x for x in terminals
                                 if all(isinstance(m, fixed) for m in x[0].matches)]
                if ends_chain(r) and not is_stateful(r):
                    terminals.append((r, sig, box))
                    if not r.matches:
                        terminals = [(r, sig, box)]  # it covers everything; older ones add nothing
            chains.append(c if len(kept) == len(c.rules) else
                          ir.Chain(c.name, tuple(kept), c.base, c.loc))
        tables.append(ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))
