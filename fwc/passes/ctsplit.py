"""ct split: established packets get their own copy of a base chain, without the rules that
cannot match them.

A base chain B whose established packets pass rules that test `ct state new` (or another state
set without `established`) before they reach their verdict gets a first rule
`ct state established goto B_est`, where B_est is B specialised to established packets:
- a rule whose `ct state` test excludes established is left out (it never matches them);
- a `ct state` test that includes established is dropped from the rule (it always holds).
A packet's conntrack state does not change while a chain runs (only `notrack`, before
conntrack, could: chains at raw priority are left alone, as are NAT chains, which established
packets never see).  Falling off the end of B_est, or `return` in it, applies B's policy, as
falling off B does.  Rules with something stateful are copied as they are (dropping one would
skip its side effect).  The split is made only when it saves established packets at least two
rule evaluations before their verdict (the goto itself costs one).
"""

from __future__ import annotations

from typing import Optional

from fwc import ir
from fwc.passes.analysis import ends_chain, is_stateful
from fwc.passes.notes import Explain, Notes

STATE = "ESTABLISHED"
CONNTRACK_PRIORITY = -200
MIN_SAVED = 2


def specialise(r: ir.Rule) -> Optional[ir.Rule]:
    """The rule as seen by established packets (None: it never matches them)."""
    if is_stateful(r):
        return r
    kept = []
    for m in r.matches:
        if isinstance(m, ir.CtState) and m.states and m.states <= frozenset(ir.CT_STATES):
            if (STATE in m.states) != m.negate:
                continue  # always true for established packets
            return None
        kept.append(m)
    if len(kept) == len(r.matches):
        return r
    return ir.Rule(tuple(kept), r.statements, r.verdict, r.comment, r.loc)


def _saving(spec: list) -> int:
    """Rules established packets no longer evaluate before the first rule that surely ends
    evaluation for them."""
    saved = 0
    for s in spec:
        if s is None:
            saved += 1
        elif not s.matches and ends_chain(s) and not s.statements:
            break
    return saved


def split_established(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("ctsplit", explain)
    tables = []
    for t in rs.tables:
        names = {c.name for c in t.chains}
        chains = []
        for c in t.chains:
            b = c.base
            if b is None or b.type == "nat" or b.priority <= CONNTRACK_PRIORITY or not c.rules:
                chains.append(c)
                continue
            spec = [specialise(r) for r in c.rules]
            if _saving(spec) < MIN_SAVED:
                chains.append(c)
                continue
            name = f"{c.name}_est"
            while name in names:
                name += "_"
            names.add(name)
            head = ir.Rule((ir.CtState(frozenset({STATE})),), (), ir.Goto(name), None, c.loc)
            notes.info(f"chain {c.name}: established packets go to {name}, which leaves out "
                       f"{sum(s is None for s in spec)} rules they cannot match", c.loc)
            chains.append(ir.Chain(c.name, (head,) + c.rules, c.base, c.loc))
            chains.append(ir.Chain(name, tuple(s for s in spec if s is not None), None, c.loc))
        tables.append(ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))


__all__ = ["split_established", "specialise"]
