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

from fwc import ir
from fwc.passes.analysis import EST_REL, STATEFUL_MATCHES, is_stateful
from fwc.passes.notes import Explain, Notes


def fast_path_states(rule: ir.Rule):
    """S when `rule` is `ct state S accept` with S within {established, related}, else None."""
    if len(rule.matches) != 1 or rule.statements or rule.verdict != ir.Accept():
        return None
    m = rule.matches[0]
    if isinstance(m, ir.CtState) and not m.negate and m.states and m.states <= EST_REL:
        return m.states
    return None


def excludes_states(rule: ir.Rule, states: frozenset) -> bool:
    """No packet in any of `states` matches `rule`, and deciding so touches no state."""
    for m in rule.matches:
        if isinstance(m, STATEFUL_MATCHES):
            return False  # reached before a proof: evaluating it is an effect
        if isinstance(m, ir.CtState):
            if not m.negate and not (m.states & states) and \
                    not (m.states & {"SNAT", "DNAT"}):
                return True
            if m.negate and states <= m.states:
                return True
    return False


def acts_like_accept(rule: ir.Rule) -> bool:
    return rule.verdict == ir.Accept() and not rule.statements and not is_stateful(rule)


def blocks(rule: ir.Rule, states: frozenset) -> bool:
    if excludes_states(rule, states):
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
        tables.append(ir.Table(t.family, t.name, tuple(chains), t.sets, t.loc))
    return ir.Ruleset(tuple(tables))


def _fast_path_chain(c: ir.Chain, notes: Notes) -> ir.Chain:
    rules = list(c.rules)
    k = next((i for i, r in enumerate(rules) if fast_path_states(r) is not None), None)
    if k is None or k == 0:
        return c
    e = rules[k]
    states = fast_path_states(e)
    target = 0
    blocker = None
    for i in range(k - 1, -1, -1):
        if blocks(rules[i], states):
            target, blocker = i + 1, rules[i]
            break
    if blocker is not None:
        notes.info(f"chain {c.name}: `ct state {','.join(sorted(states)).lower()} accept` "
                   f"cannot move before the rule at {blocker.loc}: that rule may act on such "
                   f"packets" + (f"; moved up from position {k + 1} to {target + 1}"
                                 if target < k else ""), e.loc)
    if target == k:
        return c
    if blocker is None:
        notes.info(f"chain {c.name}: `ct state {','.join(sorted(states)).lower()} accept` "
                   f"moved from position {k + 1} to the front", e.loc)
    rules.insert(target, rules.pop(k))
    return ir.Chain(c.name, tuple(rules), c.base, c.loc)
