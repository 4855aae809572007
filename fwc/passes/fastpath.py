"""Fast path: move `ct state established,related accept` to the front of its base chain.

Let E be a rule whose only match is `ct state S` (S a non-empty subset of {established,
related}), with no statements, verdict accept.  Moving E from position k to position j < k
keeps every verdict and side effect iff no rule between j and k could act on a packet E
matches:
- packets E does not match see the same rules in the same order (E never acts on them);
- a packet E matches was accepted by E, unless an earlier rule acted on it first.  So each rule
  in between must either be unable to match a packet in state S, or, when it matches, do what
  E does: accept with no statements and nothing stateful (e.g. `iifname lo accept`).
A rule is proven unable to match state S only by a `ct state` test excluding S that is
evaluated before any stateful match.  TCP flag tests prove nothing: the first SYN of a
connection a helper expected is RELATED, and a retransmitted or reopening SYN can be
ESTABLISHED.  NAT chains are left alone (they only see a connection's first packet).
When E cannot reach the front, it moves just past the last rule that blocks it, and a note
names that rule.
"""

from __future__ import annotations

import attrs

from fwc import ir
from fwc.passes.analysis import EST_REL, STATEFUL_MATCHES, _matches_disjoint, implies, is_stateful
from fwc.passes.notes import Explain, Notes


def fast_path_states(rule: ir.Rule):
    """S when `rule` is `[conditions] ct state S accept` with S within {established,
    related}, no statements and nothing stateful, else None."""
    if rule.statements or rule.verdict != ir.Accept() or is_stateful(rule):
        return None
    for m in rule.matches:
        if isinstance(m, ir.CtState) and not m.negate and m.states and m.states <= EST_REL:
            return m.states
    return None


def _est_states(rule: ir.Rule):
    """S when `rule` accepts on `ct state S` (S within {established, related}), whatever else
    it does: the shape of a fast-path rule, maybe with statements or stateful matches."""
    if rule.verdict != ir.Accept():
        return None
    for m in rule.matches:
        if isinstance(m, ir.CtState) and not m.negate and m.states and m.states <= EST_REL:
            return m.states
    return None


def _what(states: frozenset, conditional: bool) -> str:
    what = "ct state " + ",".join(sorted(states)).lower() + " accept"
    return "conditional " + what if conditional else what


def excludes(rule: ir.Rule, e: ir.Rule, states: frozenset) -> bool:
    """No packet matching `e` (in one of `states`) matches `rule`, and deciding so touches no
    state: a contradicting match comes before any stateful one."""
    for m in rule.matches:
        if isinstance(m, STATEFUL_MATCHES):
            return False  # reached before a proof: evaluating it is an effect
        if isinstance(m, ir.CtState):
            if not m.negate and not (m.states & states) and \
                    not (m.states & {"SNAT", "DNAT"}):
                return True
            if m.negate and states <= m.states:
                return True
        if any(_matches_disjoint(m, x) for x in e.matches):
            return True
    return False


def acts_like_accept(rule: ir.Rule) -> bool:
    return rule.verdict == ir.Accept() and not rule.statements and not is_stateful(rule)


def blocks(rule: ir.Rule, e: ir.Rule, states: frozenset) -> bool:
    if excludes(rule, e, states):
        return False
    if acts_like_accept(rule):
        return False
    if not rule.statements and rule.verdict is None and not is_stateful(rule):
        return False  # matching it does nothing
    return True


def fast_path(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("fastpath", explain)
    tables = []
    for t in rs.tables:
        chains = []
        for c in t.chains:
            if c.base is None or c.base.type == "nat":
                chains.append(c)
                continue
            chains.append(_fast_path_chain(c, notes))
        tables.append(ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))


def _fast_path_chain(c: ir.Chain, notes: Notes) -> ir.Chain:
    rules = list(c.rules)
    for i, r in enumerate(rules):
        states = _est_states(r)
        if i > 0 and states is not None and fast_path_states(r) is None:
            why = ", ".join(sorted({type(s).__name__.lower() for s in r.statements})) or \
                "stateful match"
            notes.info(f"chain {c.name}: `{_what(states, len(r.matches) > 1)}` stays at "
                       f"position {i + 1}: moved, its own {why} would see other packets", r.loc)
    # the unconditional `ct state established,related accept` first, then conditional ones
    ks = sorted((i for i, r in enumerate(rules) if fast_path_states(r) is not None),
                key=lambda i: (len(rules[i].matches) > 1, i))

    def where(e: ir.Rule) -> int:  # by identity: rules compare without their locations
        return next(j for j, r in enumerate(rules) if r is e)

    for e in [rules[i] for i in ks]:
        rules = _move_up(rules, where(e), c, notes)
    if ks and len(c.rules[ks[0]].matches) == 1:
        rules = _conditional_copy(rules, where(c.rules[ks[0]]), c, notes)
    return c if rules == list(c.rules) else ir.Chain(c.name, tuple(rules), c.base, c.loc)


# a copy may exclude the blockers' packets by negating one of these (never widened by negation:
# each is the exact complement of itself, on a field nothing changes)
COPY_EXCLUDES = (ir.Address, ir.Interface, ir.Proto)


def _proves(rule: ir.Rule, m: ir.Match) -> bool:
    """`rule` cannot match without `m` holding, decided before anything stateful runs."""
    for x in rule.matches:
        if isinstance(x, STATEFUL_MATCHES):
            return False
        if implies(x, m):
            return True
    return False


def _conditional_copy(rules: list, k: int, c: ir.Chain, notes: Notes) -> list:
    """E (unconditional, at k) is blocked by rules that all require one match m (e.g. `ip daddr
    127.0.0.0/8 reject`): a copy `not m E` at the front accepts every other established packet
    those rules could not touch; E stays where it is for the rest."""
    e = rules[k]
    states = fast_path_states(e)
    blockers = [r for r in rules[:k] if blocks(r, e, states)]
    if not blockers:
        return rules
    for m in blockers[0].matches:
        if not isinstance(m, COPY_EXCLUDES) or m.negate or \
                (isinstance(m, ir.Interface) and m.name == "+"):
            continue
        if all(_proves(b, m) for b in blockers):
            neg = attrs.evolve(m, negate=True)
            copy = ir.Rule((neg,) + e.matches, (), e.verdict, e.comment, e.loc)
            notes.info(f"chain {c.name}: a copy of `ct state ... accept` for packets the rules "
                       f"before it cannot touch put at the front", e.loc)
            return [copy] + rules
    return rules


def _move_up(rules: list, k: int, c: ir.Chain, notes: Notes) -> list:
    """E moves past every rule that does not block it, other fast-path rules included (they
    accept without effects).  Where it lands it stays after the fast-path rules there, so they
    keep their order, except that an unconditional E goes before conditional ones."""
    e = rules[k]
    states = fast_path_states(e)
    target = 0
    blocker = None
    for i in range(k - 1, -1, -1):
        if fast_path_states(rules[i]) is None and blocks(rules[i], e, states):
            target, blocker = i + 1, rules[i]
            break
    while target < k and fast_path_states(rules[target]) is not None and \
            (len(e.matches) > 1 or len(rules[target].matches) == 1):
        target += 1
    what = _what(states, len(e.matches) > 1)
    if blocker is not None:
        notes.info(f"chain {c.name}: `{what}` "
                   f"cannot move before the rule at {blocker.loc}: that rule may act on such "
                   f"packets" + (f"; moved up from position {k + 1} to {target + 1}"
                                 if target < k else ""), e.loc)
    if target == k:
        return rules
    if blocker is None:
        notes.info(f"chain {c.name}: `{what}` moved from position {k + 1} to the front"
                   + (f" (after {target} fast-path rule{'s' * (target > 1)})" if target else ""),
                   e.loc)
    rules = list(rules)
    rules.insert(target, rules.pop(k))
    return rules


def add_fast_path(rs: ir.Ruleset, chains: dict, explain: Explain = None) -> ir.Ruleset:
    """`ct state established,related accept` added to the base chains named in `chains`
    (name -> the location that asks for it), where it keeps the meaning the caller asks for:
    every established or related packet accepted before the chain's rules act on it.  That is
    the front of the chain; the rules already there stay in their order."""
    notes = Notes("fastpath", explain)
    tables = []
    for t in rs.tables:
        out = []
        for c in t.chains:
            loc = chains.get(c.name) if c.base is not None and c.base.type != "nat" else None
            if loc is None:
                out.append(c)
                continue
            e = ir.Rule((ir.CtState(EST_REL),), (), ir.Accept(), None, loc)
            notes.info(f"chain {c.name}: `{_what(EST_REL, False)}` added as the first rule: "
                       "established and related packets are accepted before any rule", loc)
            out.append(ir.Chain(c.name, (e,) + c.rules, c.base, c.loc))
        tables.append(ir.Table(t.family, t.name, tuple(out), t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))
