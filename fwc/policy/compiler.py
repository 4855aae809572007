"""The policy compiler's driver: text -> (IR ruleset, warnings, explanation)."""

from __future__ import annotations

from typing import Callable

import attrs

from fwc import ir
from fwc.errors import FwcSyntaxError
from fwc.gcpause import without_gc
from fwc.policy import names as N
from fwc.passes.fastpath import add_fast_path
from fwc.policy.lower import FILTER_HOOKS, HELPER_CHAIN, HELPER_PRIORITY, TABLE, lower
from fwc.policy.resolve import PRule, Resolver, Warning_, read_file
from fwc.policy.shadow import shadowed


@attrs.frozen
class PolicyResult:
    ruleset: ir.Ruleset
    warnings: tuple[Warning_, ...]
    explanation: str
    notes: tuple = ()  # fwc.passes.notes.Note of the passes that made the defaults


def _helper_rules(res: Resolver) -> list[ir.Rule]:
    rules = []
    for h in res.helpers:
        decl = h.services[0]
        name = decl.name.text
        if name not in N.HELPERS:
            raise res.error(f"unknown conntrack helper '{name}'{_hint(name, N.HELPERS)}; one "
                            "of " + ", ".join(N.HELPERS), decl.name)
        for tok in decl.services:
            for atom in res.service_tok(tok, "helper ... on takes services"):
                pname = {6: "tcp", 17: "udp"}.get(atom.proto)
                if atom.ports is None or pname not in N.HELPERS[name]:
                    raise res.error(f"helper {name} works on "
                                    + " or ".join(f"{p}/PORT" for p in N.HELPERS[name])
                                    + f", not {tok.text}", tok)
                # (nft's ct helper set, after conntrack; split_ruleset makes iptables' template)
                family = (ir.FieldMatch("meta nfproto", ("ipv4",)),) if name in N.IPV4_HELPERS else ()
                rules.append(ir.Rule(
                    family + (ir.Proto(frozenset({atom.proto})),
                              ir.Port(pname, "dport", (atom.ports,))),
                    (ir.CtHelperSet(name, template=False),), None, None, decl.loc))
    return rules


def _hint(word, choices) -> str:
    from fwc.policy.parser import suggest
    return suggest(word, choices)


def _loc_rule(res: Resolver, pr: PRule) -> FwcSyntaxError:
    parts = []
    for what, addrs in (("from", pr.saddr), ("to", pr.daddr)):
        if addrs is not None:
            fams = sorted({a.version for a in addrs})
            parts.append(f"'{what}' is IPv{'/IPv'.join(map(str, fams))} only")
    if pr.target is not None and pr.target.addr is not None:
        parts.append(f"the target is IPv{pr.target.addr.version}")
    if pr.services and all(a.family for a in pr.services):
        parts.append("the ICMP types are IPv" + "/IPv".join(
            sorted({"4" if a.family == "ip" else "6" for a in pr.services})) + " only")
    return res.error("rule can never match: " + ", ".join(parts), pr.loc)


def _warn_host_basics(res: Resolver) -> None:
    inp = res.chains.get("input")
    if inp is None or inp.policy != "drop":
        return
    accepts = [r for r in inp.rules if r.action == "accept" and r.limit is None]
    if not any(r.iif and "lo" in r.iif for r in accepts) and not any(
            r.services is None and r.saddr is None and r.iif is None and r.states is None
            for r in accepts):
        res.warnings.append(Warning_("input drops loopback traffic: add 'allow iif lo'",
                                     inp.loc))
    nd = any((r.services is None and r.iif is None and r.saddr is None)
             or (r.services and any(a.family == "ip6" and a.icmp_type in (None, 135)
                                    for a in r.services))
             for r in accepts)
    if not nd:
        res.warnings.append(Warning_(
            "input drops IPv6 neighbour discovery, so IPv6 will not work: add 'allow ndp'",
            inp.loc))


@without_gc
def compile_full(text: str, filename: str = "<policy>",
                 read: Callable[[str], str] = read_file) -> PolicyResult:
    from fwc.frontends import check_text
    check_text(text, filename)
    res = Resolver(read)
    try:
        res.load(text, filename)
        res.finish()
    except RecursionError:  # (definitions chained thousands deep)
        raise FwcSyntaxError("definitions refer to one another too deeply (over a few hundred "
                             "levels)", ir.Loc(filename, 1, 1)) from None
    helper_rules = _helper_rules(res)
    ruleset, expansion = lower(res, helper_rules, lambda pr: _loc_rule(res, pr))
    notes: list = []
    # the stateful default's fast path comes from the optimiser's pass, as in `translate -O`
    ruleset = add_fast_path(ruleset, {name: pc.loc for name, pc in res.chains.items()
                                      if name in FILTER_HOOKS and not pc.stateless},
                            notes.append)
    for chain in res.chains.values():
        groups = [chain.rules] if chain.name != "nat" else [
            [r for r in chain.rules if r.action in ("dnat", "redirect")],
            [r for r in chain.rules if r.action not in ("dnat", "redirect")]]
        for rules in groups:
            for late, early in shadowed(rules):
                res.warnings.append(Warning_(
                    f"unreachable rule: every packet it matches is already decided by the rule "
                    f"at line {early.loc.line}" + (f" of {early.loc.file}" if early.loc.file
                                                   != late.loc.file else ""), late.loc))
    _warn_host_basics(res)
    if not res.chains and not res.helpers:
        res.warnings.append(Warning_("the policy declares no chain (input, output, forward "
                                     "or nat): nothing to compile", ir.Loc(filename, 1, 1)))
    warnings = tuple(sorted(res.warnings, key=lambda w: (w.loc.file, w.loc.line, w.loc.col)))
    return PolicyResult(ruleset, warnings, explain(res, expansion, filename), tuple(notes))


def explain(res: Resolver, expansion: dict, filename: str) -> str:
    out = [f"# fwc compile --explain: {filename}",
           f"# One 'inet' table '{TABLE}' serves IPv4 and IPv6; rules without addresses apply "
           "to both,",
           "# rules with addresses of one family go only to that family (split when mixed)."]
    if res.helpers:
        out.append(f"# chain {HELPER_CHAIN} (prerouting, priority {HELPER_PRIORITY}): "
                   "assigns conntrack helpers")
        for h in res.helpers:
            out.append(f"#   line {h.loc.line}: helper {h.services[0].name.text}")
    for name in ("input", "forward", "output"):
        pc = res.chains.get(name)
        if pc is None:
            out.append(f"# {name}: not declared -> no chain (the kernel accepts)")
            continue
        out.append(f"# {name}: policy {pc.policy}" + (" (stateless)" if pc.stateless else ""))
        if not pc.stateless:
            out.append("#   default: ct state established,related accept  (fast path for "
                       "replies; RELATED covers helper data connections and ICMP errors)")
            out.append("#   default: ct state invalid drop")
            out.append("#   (say 'stateless' after the policy to leave both out)")
        for pr in pc.rules:
            n = len(expansion.get(id(pr), ()))
            out.append(f"#   line {pr.loc.line}: {pr.text}  -> {n} rule{'s' * (n != 1)}")
        out.append(f"#   otherwise: {pc.policy}")
    nat = res.chains.get("nat")
    if nat is not None:
        out.append("# nat: dnat/redirect in prerouting (priority -100), snat/masquerade in "
                   "postrouting (priority 100)")
        for pr in nat.rules:
            n = len(expansion.get(id(pr), ()))
            out.append(f"#   line {pr.loc.line}: {pr.text}  -> {n} rule{'s' * (n != 1)}")
    for w in res.warnings:
        out.append(f"# warning: line {w.loc.line}: {w.message}")
    return "\n".join(out) + "\n"
