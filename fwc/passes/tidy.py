"""Tidy: small rewrites that each remove a rule evaluation without changing any outcome.

- `drop_useless_rules`: rules that cannot change anything go:
  * a rule with no statements, no verdict and nothing stateful (matching it does nothing);
  * in a user chain, a final `return` with no statements and nothing stateful: falling off the
    end of a user chain returns too.  (This also lets the inline pass splice such chains.)
- `merge_complements`: two adjacent rules with the same effect whose matches differ only in
  one test and its negation (`iifname "a" oifname != "b" accept; iifname "a" oifname "b"
  accept`) become one rule without that test.  A packet satisfying the common tests matches
  exactly one of the two.  The test must be on a field nothing can change (interface, address
  of the table's own family), so the first rule's effect cannot make the second match too.
  Also, a terminal rule directly followed by a rule with the same effect that matches every
  packet it matches is removed (`iifname "a" oifname "b" accept; iifname "a" accept`).
- `resolve_trivial_jumps`: `jump C` or `goto C` where C's first rule is an unconditional
  accept/drop/reject/queue without statements becomes that verdict: the packet meets exactly
  that verdict either way (one evaluation fewer, and the fast-path pass can see the rule).
- `peel_fast_path`: before an unconditional `jump C` (no statements) whose chain C starts
  with `ct state established,related accept`, a copy of that rule is inserted.  A packet the
  copy accepts would have been accepted by C's first rule; any other packet goes on exactly as
  before.  The copy is what the fast-path pass can then move to the front of the caller.
"""

from __future__ import annotations

from fwc import ir
from fwc.passes.analysis import ends_chain, is_stateful, rule_covers
from fwc.passes.fastpath import fast_path_states
from fwc.passes.notes import Explain, Notes


def _map_chains(rs: ir.Ruleset, fn) -> ir.Ruleset:
    tables = []
    for t in rs.tables:
        chains = tuple(fn(t, c) for c in t.chains)
        tables.append(t if chains == t.chains else
                      ir.Table(t.family, t.name, chains, t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))


def _with_rules(c: ir.Chain, rules: list) -> ir.Chain:
    return c if tuple(rules) == c.rules else ir.Chain(c.name, tuple(rules), c.base, c.loc)


# ----------------------------------------------------------------------------- useless rules


def drop_useless_rules(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("tidy", explain)

    def chain(_t: ir.Table, c: ir.Chain) -> ir.Chain:
        rules = []
        for r in c.rules:
            if not r.statements and r.verdict in (None, ir.Continue()) and not is_stateful(r):
                notes.info(f"chain {c.name}: rule without effect removed", r.loc)
                continue
            rules.append(r)
        while c.base is None and rules and rules[-1].verdict == ir.Return() and \
                not rules[-1].statements and not is_stateful(rules[-1]):
            notes.info(f"chain {c.name}: final return removed (the chain returns anyway)",
                       rules[-1].loc)
            rules.pop()
        return _with_rules(c, rules)
    return _map_chains(rs, chain)


# ----------------------------------------------------------------------------- complements


def _complement(a: ir.Match, b: ir.Match, family: str) -> bool:
    """`a` is exactly the negation of `b`, on a field no statement changes."""
    if type(a) is not type(b) or getattr(a, "negate", None) is None or a.negate == b.negate:
        return False
    if isinstance(a, ir.Interface):
        return a.field == b.field and a.name == b.name
    if isinstance(a, ir.Address):
        fams = {("ip" if v.version == 4 else "ip6") for v in a.values}
        return fams == {family} and a.field == b.field and a.values == b.values
    return False


def _merge_pair(r1: ir.Rule, r2: ir.Rule, family: str):
    if r1.statements != r2.statements or r1.verdict != r2.verdict or is_stateful(r1) or \
            is_stateful(r2):
        return None
    if len(r1.matches) == len(r2.matches):
        diff = [i for i, (a, b) in enumerate(zip(r1.matches, r2.matches)) if a != b]
        if len(diff) == 1 and _complement(r1.matches[diff[0]], r2.matches[diff[0]], family):
            i = diff[0]
            return ir.Rule(r1.matches[:i] + r1.matches[i + 1:], r1.statements, r1.verdict,
                           r1.comment if r1.comment == r2.comment else None, r1.loc)
    if ends_chain(r1) and rule_covers(r2, r1):
        return r2  # r1's packets get the same from r2, which comes right after
    return None


def merge_complements(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("tidy", explain)

    def chain(t: ir.Table, c: ir.Chain) -> ir.Chain:
        rules: list = []
        for r in c.rules:
            merged = _merge_pair(rules[-1], r, t.family) if rules else None
            if merged is not None:
                notes.info(f"chain {c.name}: rule merged with the next one (same effect, "
                           f"together they need one test less)", rules[-1].loc)
                rules[-1] = merged
            else:
                rules.append(r)
        return _with_rules(c, rules)
    return _map_chains(rs, chain)


# ----------------------------------------------------------------------------- trivial jumps

ABSOLUTE = (ir.Accept, ir.Drop, ir.Reject, ir.Queue)  # verdicts that end all evaluation


def resolve_trivial_jumps(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("tidy", explain)

    def chain(t: ir.Table, c: ir.Chain) -> ir.Chain:
        rules = []
        for r in c.rules:
            target = t.chain(r.verdict.chain) if isinstance(r.verdict, (ir.Jump, ir.Goto)) \
                else None
            first = target.rules[0] if target is not None and target.rules else None
            if first is not None and not first.matches and not first.statements and \
                    isinstance(first.verdict, ABSOLUTE):
                notes.info(f"chain {c.name}: {type(r.verdict).__name__.lower()} to "
                           f"{target.name} replaced by its verdict", r.loc)
                r = ir.Rule(r.matches, r.statements, first.verdict, r.comment, r.loc)
            rules.append(r)
        return _with_rules(c, rules)
    return _map_chains(rs, chain)


# ----------------------------------------------------------------------------- peeling


def peel_fast_path(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("tidy", explain)

    def chain(t: ir.Table, c: ir.Chain) -> ir.Chain:
        if c.base is None or c.base.type == "nat":
            return c
        rules = []
        for r in c.rules:
            target = t.chain(r.verdict.chain) if isinstance(r.verdict, ir.Jump) else None
            if target is not None and target.rules and not r.statements and \
                    not is_stateful(r) and fast_path_states(target.rules[0]) is not None and \
                    len(target.rules[0].matches) == 1:
                e = target.rules[0]
                copy = ir.Rule(r.matches + e.matches, (), e.verdict, e.comment, e.loc)
                if not rules or rules[-1] != copy:
                    notes.info(f"chain {c.name}: copy of {target.name}'s first rule put before "
                               f"the jump to it", r.loc)
                    rules.append(copy)
            rules.append(r)
        return _with_rules(c, rules)
    return _map_chains(rs, chain)


__all__ = ["drop_useless_rules", "merge_complements", "peel_fast_path", "resolve_trivial_jumps"]
