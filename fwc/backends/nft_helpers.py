"""iptables `-t raw -j CT --helper NAME` in nftables.

iptables attaches a conntrack template before conntrack runs (raw, priority -300); nft can only
set a helper on the entry conntrack created (`ct helper set`, after priority -200).  For a NEW
connection both end with the same helper on the entry, so the raw chain is split in two:

- the raw chain itself, at -300, without the helper assignments;
- a replay of it at priority -199, same hook, policy accept, whose rules keep only their
  matches, verdicts and helper assignments.  The replay decides exactly as the raw chain did
  as long as nothing it matches on changes between -300 and -199, which is checked: only
  packet-header matches, no marks or conntrack matches, no stateful matches, and no notrack
  or zone assignments (a later template replaces an earlier one in iptables).

Anything else is left as it is, and the renderer refuses the helper with a located error.
"""

from __future__ import annotations

from typing import Optional

import attrs

from fwc import ir

REPLAY_PRIORITY = -199
_STABLE = (ir.Proto, ir.Address, ir.Interface, ir.Fragment, ir.Port, ir.TcpFlags, ir.TcpOption,
           ir.Icmp, ir.Mac, ir.AddrType, ir.SkUid, ir.SkGid, ir.PktType, ir.Length, ir.Ttl,
           ir.Dscp, ir.Tos, ir.SetLookup, ir.IpsecPolicy)
_HARMLESS = (ir.Log, ir.NfLog, ir.Counter, ir.NamedCounter, ir.Trace, ir.CtHelperSet)


def split_raw_helpers(rs: ir.Ruleset) -> ir.Ruleset:
    return ir.Ruleset(tuple(_table(t) for t in rs.tables))


def _reachable(t: ir.Table, start: ir.Chain) -> Optional[list[ir.Chain]]:
    seen: dict[str, ir.Chain] = {}
    todo = [start]
    while todo:
        c = todo.pop()
        if c.name in seen:
            continue
        seen[c.name] = c
        for r in c.rules:
            if isinstance(r.verdict, (ir.Jump, ir.Goto)):
                nxt = t.chain(r.verdict.chain)
                if nxt is None or nxt.base is not None:
                    return None
                todo.append(nxt)
    return list(seen.values())


def _template(s) -> bool:
    """iptables' CT --helper (nft's own `ct helper set` is written as it is)."""
    return isinstance(s, ir.CtHelperSet) and s.template


def _has_helper(chains) -> bool:
    return any(_template(s) for c in chains for r in c.rules for s in r.statements)


def _replayable(chains) -> bool:
    for c in chains:
        for r in c.rules:
            if not all(isinstance(m, _STABLE) for m in r.matches):
                return False
            if not all(isinstance(s, _HARMLESS) for s in r.statements):
                return False
    return True


def _table(t: ir.Table) -> ir.Table:
    if t.family not in ir.FAMILIES:
        return t
    new_chains: list[ir.Chain] = []
    replays: list[ir.Chain] = []
    stripped: set[str] = set()
    names = {c.name for c in t.chains}
    rename: dict[str, str] = {}  # chain -> its replay (user chains are replayed once)
    for c in t.chains:
        if c.base is None or c.base.priority >= -200 or c.base.type != "filter":
            continue
        chains = _reachable(t, c)
        if not chains or not _has_helper(chains) or not _replayable(chains):
            continue
        fresh = [x for x in chains if x.name not in rename]
        for x in fresh:
            new = f"{x.name}-helpers"
            while new in names:
                new += "_"
            names.add(new)
            rename[x.name] = new
        for x in fresh:
            base = None
            if x is c:
                base = ir.BaseHook("filter", c.base.hook, REPLAY_PRIORITY, "accept")
            replays.append(ir.Chain(rename[x.name], tuple(_replay_rule(r, rename) for r in x.rules),
                                    base, x.loc))
            stripped.add(x.name)
    if not replays:
        return t
    for c in t.chains:
        if c.name in stripped:
            c = attrs.evolve(c, rules=tuple(_strip_rule(r) for r in c.rules))
        new_chains.append(c)
    return attrs.evolve(t, chains=tuple(new_chains) + tuple(replays))


def _strip_rule(r: ir.Rule) -> ir.Rule:
    stmts = tuple(s for s in r.statements if not _template(s))
    return attrs.evolve(r, statements=stmts)


def _replay_rule(r: ir.Rule, rename: dict) -> ir.Rule:
    # (after conntrack, nft's own `ct helper set`: on the new entry)
    stmts = tuple(attrs.evolve(s, template=False) for s in r.statements if _template(s))
    v = r.verdict
    if isinstance(v, (ir.Jump, ir.Goto)):
        v = type(v)(rename[v.chain])
    return attrs.evolve(r, statements=stmts, verdict=v)


def merge_helper_replays(t: ir.Table) -> ir.Table:
    """The inverse of the split, for the iptables backend: a table that is exactly what the
    split makes of some table M (replay chains at REPLAY_PRIORITY included) means what M means,
    so M is returned, its raw chains assigning the helpers themselves (`-j CT --helper`).
    Checked by splitting M again; any other table is returned unchanged (and its -199 chains
    are refused where they are)."""
    if t.family not in ir.FAMILIES:
        return t
    replays = [c for c in t.chains if c.base is not None and c.base.priority == REPLAY_PRIORITY]
    if not replays:
        return t
    by_name = {c.name: c for c in t.chains}
    rename: dict[str, str] = {}  # chain of M -> its replay
    for p in replays:
        raws = [c for c in t.chains if c.base is not None and c.base.type == "filter"
                and c.base.hook == p.base.hook and c.base.priority < -200
                and p.name.startswith(f"{c.name}-helpers")]
        if len(raws) != 1:
            return t
        todo = [(raws[0], p)]
        while todo:
            c, r = todo.pop()
            if c.name in rename:
                if rename[c.name] != r.name:
                    return t
                continue
            rename[c.name] = r.name
            if len(c.rules) != len(r.rules):
                return t
            for a, b in zip(c.rules, r.rules):
                if isinstance(a.verdict, (ir.Jump, ir.Goto)):
                    if type(b.verdict) is not type(a.verdict):
                        return t
                    ca, cb = by_name.get(a.verdict.chain), by_name.get(b.verdict.chain)
                    if ca is None or cb is None or cb.base is not None:
                        return t
                    todo.append((ca, cb))
    replay_names = set(rename.values())
    if replay_names & set(rename):
        return t
    for c in t.chains:  # nothing but the replays themselves may lead into a replay
        if c.name not in replay_names and _targets(c) & replay_names:
            return t
    chains = []
    for c in t.chains:
        if c.name in replay_names:
            continue
        if c.name in rename:
            r = by_name[rename[c.name]]
            c = attrs.evolve(c, rules=tuple(
                attrs.evolve(a, statements=a.statements + tuple(
                    attrs.evolve(s, template=True)  # (back in the raw chain: a template)
                    for s in b.statements if isinstance(s, ir.CtHelperSet)))
                for a, b in zip(c.rules, r.rules)))
        chains.append(c)
    merged = attrs.evolve(t, chains=tuple(chains))
    again = _table(merged)
    if len(again.chains) != len(t.chains) or {c.name: c for c in again.chains} != by_name:
        return t
    return merged


def _targets(c: ir.Chain) -> set:
    out = set()
    for r in c.rules:
        v = r.verdict
        if isinstance(v, (ir.Jump, ir.Goto)):
            out.add(v.chain)
        elif isinstance(v, ir.VerdictMap):
            out |= {x.chain for _, x in v.elements if isinstance(x, (ir.Jump, ir.Goto))}
    return out
