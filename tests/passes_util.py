"""Helpers for the optimiser tests: small IR builders and a simulator-based meaning check."""

from __future__ import annotations

import ipaddress

from fwc import ir
from fwc.backends.simulate import SimOptions, simulate
from fwc.testing.gen import generate_cases

ACCEPT, DROP = ir.Accept(), ir.Drop()
VERDICT_ACTIONS = ("accept", "drop", "return", "reject", "queue", "jump ", "goto ", "policy ",
                   "vmap")


def loc(line: int) -> ir.Loc:
    return ir.Loc("t.rules", line, 1)


def R(*matches, statements=(), verdict=None, line=0, comment=None) -> ir.Rule:
    return ir.Rule(tuple(matches), tuple(statements), verdict, comment, loc(line))


def saddr(*nets: str) -> ir.Address:
    return ir.Address("saddr", tuple(ipaddress.ip_network(n) for n in nets))


def dport(*ports: int, proto: str = "tcp") -> ir.Port:
    return ir.Port(proto, "dport", tuple(ir.Range(p, p) for p in ports))


def state(*names: str, negate: bool = False) -> ir.CtState:
    return ir.CtState(frozenset(names), negate)


EST = R(state("ESTABLISHED", "RELATED"), verdict=ACCEPT, line=99)


def base(name: str, *rules: ir.Rule, policy: str = "drop", hook: str = "") -> ir.Chain:
    return ir.Chain(name, tuple(rules), ir.iptables_base_hook("filter", name, policy))


def user(name: str, *rules: ir.Rule) -> ir.Chain:
    return ir.Chain(name, tuple(rules))


def rs_of(*chains: ir.Chain, family: str = "ip", name: str = "filter") -> ir.Ruleset:
    return ir.Ruleset((ir.Table(family, name, tuple(chains)),))


def chain_of(rs: ir.Ruleset, name: str) -> ir.Chain:
    return rs.tables[0].chain(name)


def effects(result) -> tuple:
    """Statement actions (log, mark...) of a probe in order, without the verdict steps."""
    return tuple(e["action"] for e in result.trace
                 if e.get("rule") is not None and not e["action"].startswith(VERDICT_ACTIONS))


def meaning_diff(before: ir.Ruleset, after: ir.Ruleset, n: int = 120, seed: int = 0):
    """Generated cases on which the simulator tells the two rulesets apart."""
    cases = generate_cases(before, n, seed)
    # the simulator's decision cache does not (yet) key on the fields a verdict map reads, so a
    # vmap rule can replay another packet's decision: compare without the cache
    opts = SimOptions(cache=False)
    a, b = simulate(before, cases, opts), simulate(after, cases, opts)
    return [(c.name, x.verdict, y.verdict, effects(x), effects(y))
            for c, x, y in zip(cases, a, b)
            if (x.verdict, x.ct_state, x.setup_verdicts, effects(x)) !=
            (y.verdict, y.ct_state, y.setup_verdicts, effects(y))]
