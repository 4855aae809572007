"""Chains: a user chain jumped to from exactly one rule is inlined into its caller.

The chain C is referenced by one `jump C` (no goto, no verdict map) in the same table, and
- C has no `return` and no `goto` (both would resume at a different place once inlined:
  a goto's target returns to C's caller, which after inlining is the caller's caller);
- the jump rule has no statements, and either no matches (C's rules are spliced in its place,
  one evaluation fewer per packet) or C has one rule (the jump's matches, then that rule's,
  become one rule; more rules would repeat the test and cost more than the jump);
- the jump rule's matches are all on packet properties no statement changes, so testing them
  again after C's earlier rules gives the same answer.
Falling off C's end continues after the jump in both forms; accept/drop in C end the base chain
in both forms.
"""

from __future__ import annotations

from fwc import ir
from fwc.passes.analysis import IMMUTABLE_MATCHES, chain_references, is_stateful, never_matches
from fwc.passes.notes import Explain, Notes


def inline_chains(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("inline", explain)
    tables = []
    for t in rs.tables:
        said: set = set()  # (chain, reason) already noted: once, not once per sweep
        changed = True
        while changed:  # inlining can make another single-use jump inlinable (one level each)
            t, changed = _inline_sweep(t, notes, said)
        tables.append(t)
    return ir.Ruleset(tuple(tables))


def _why_not(c: ir.Chain, jump_rule: ir.Rule):
    if c.base is not None:
        return "it is a base chain"
    if any(isinstance(r.verdict, (ir.Return, ir.Goto)) for r in c.rules):
        return "it contains return or goto"
    if jump_rule.statements:
        return "the jump rule has statements"
    if jump_rule.matches and len(c.rules) != 1:
        return "the jump is conditional and the chain has several rules"
    if not all(isinstance(m, IMMUTABLE_MATCHES) for m in jump_rule.matches):
        return "the jump's matches could change inside the chain"
    return None


def _drop_empty_jumps(t: ir.Table, notes: Notes) -> ir.Table:
    """`jump C` to an empty user chain does nothing: C returns at once.  Such a rule goes
    (when it has no statements and nothing stateful: then matching it has no effect)."""
    empty = {c.name for c in t.chains if c.base is None and not c.rules}
    if not empty:
        return t
    chains, removed = [], False
    for c in t.chains:
        kept = []
        for r in c.rules:
            if isinstance(r.verdict, ir.Jump) and r.verdict.chain in empty and \
                    not r.statements and not is_stateful(r):
                notes.info(f"jump to the empty chain {r.verdict.chain} removed", r.loc)
                removed = True
                continue
            kept.append(r)
        chains.append(c if len(kept) == len(c.rules) else
                      ir.Chain(c.name, tuple(kept), c.base, c.loc))
    return ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc, t.counters, t.limits) if removed else t


def _inline_sweep(t: ir.Table, notes: Notes, said: set):
    """Inline every chain that can be inlined now, all callers rebuilt once (kube-proxy's
    thousands of single-use chains cost one pass over the table per nesting level, not one
    per chain).  A chain whose caller is inlined in the same sweep waits for the next one."""
    t0 = t
    t = _drop_empty_jumps(t, notes)
    refs = chain_references(t)
    by_name = {c.name: c for c in t.chains}

    def note(key, text, loc):
        if key not in said:
            said.add(key)
            notes.info(text, loc)
    plans: dict[str, tuple[str, int, list]] = {}  # inlined chain -> (caller, index, new rules)
    for name, rlist in refs.items():
        c = by_name.get(name)
        if c is None or len(rlist) != 1 or rlist[0][2] != "jump" or rlist[0][0] == name:
            continue
        caller_name, idx, _kind = rlist[0]
        jr = by_name[caller_name].rules[idx]
        why = _why_not(c, jr)
        if why is not None:
            note((name, why), f"chain {name} not inlined: {why}", c.loc)
            continue
        if jr.matches:
            inner = c.rules[0]
            new = [ir.Rule(jr.matches + inner.matches, inner.statements, inner.verdict,
                           inner.comment, inner.loc)]
            if never_matches(new[0]):
                # e.g. `udp sport != 53 -j C` into C's `icmp type 3 drop`: no packet gets there,
                # and nft refuses a rule naming two protocols
                if is_stateful(inner):  # its limit still counts the packets that enter C
                    note((name, "stateful"), f"chain {name} not inlined: its rule never matches "
                         "the packets that enter it, but a stateful match sees them", c.loc)
                    continue
                new = []
        else:
            new = list(c.rules)
        plans[name] = (caller_name, idx, new)
    # (a caller inlined in this sweep moves: its own inlinings wait for the next sweep)
    plans = {n: p for n, p in plans.items() if p[0] not in plans}
    if not plans:
        return t, t is not t0
    by_caller: dict[str, dict[int, tuple[str, list]]] = {}
    for name, (caller_name, idx, new) in plans.items():
        by_caller.setdefault(caller_name, {})[idx] = (name, new)
    chains = []
    for x in t.chains:
        if x.name in plans:
            continue
        at = by_caller.get(x.name)
        if at is None:
            chains.append(x)
            continue
        rules: list = []
        for i, r in enumerate(x.rules):
            if i not in at:
                rules.append(r)
                continue
            name, new = at[i]
            c = by_name[name]
            if new or not r.matches:
                notes.info(f"chain {name} ({len(c.rules)} rules) inlined into {x.name}", r.loc)
            else:
                notes.info(f"chain {name} reached only by packets its rule never matches: "
                           "both removed", r.loc)
            rules.extend(new)
        chains.append(ir.Chain(x.name, tuple(rules), x.base, x.loc))
    return ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc, t.counters, t.limits), True
