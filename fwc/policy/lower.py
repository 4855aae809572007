"""Resolved policy -> IR.  One inet table `fwc`; a rule is split per address family only when
its addresses (or ICMP types, or NAT target) need it, and per protocol because one IR rule
matches one protocol's ports."""

from __future__ import annotations

import ipaddress
from typing import Optional

from fwc import ir
from fwc.policy.resolve import PChain, PRule, Resolver, SvcAtom

TABLE = "fwc"
FILTER_HOOKS = {"input": "input", "forward": "forward", "output": "output"}
HELPER_CHAIN = "ct_helpers"
HELPER_PRIORITY = ir.TABLE_PRIORITY["raw"]  # where iptables' CT --helper lives
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}
ANY = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


class NeverMatches(Exception):
    """The rule's constraints leave no address family (e.g. from IPv4 only, to IPv6 only)."""


def stateful_defaults(loc: ir.Loc) -> list[ir.Rule]:
    return [
        ir.Rule((ir.CtState(frozenset({"ESTABLISHED", "RELATED"})),), verdict=ir.Accept(),
                loc=loc),
        ir.Rule((ir.CtState(frozenset({"INVALID"})),), verdict=ir.Drop(), loc=loc),
    ]


def _merge(ranges: list[ir.Range]) -> tuple[ir.Range, ...]:
    out: list[ir.Range] = []
    for r in sorted(ranges, key=lambda r: (r.lo, r.hi)):
        if out and r.lo <= out[-1].hi + 1:
            out[-1] = ir.Range(out[-1].lo, max(out[-1].hi, r.hi))
        else:
            out.append(r)
    return tuple(out)


def service_groups(atoms: Optional[list[SvcAtom]]) -> list[tuple[Optional[int], tuple]]:
    """[(family or None, matches)]: one entry per IR rule the services need."""
    if atoms is None:
        return [(None, ())]
    whole = sorted({a.proto for a in atoms if a.ports is None and a.family is None})
    groups: list[tuple[Optional[int], tuple]] = []
    if whole:
        groups.append((None, (ir.Proto(frozenset(whole)),)))
    ports: dict[int, list[ir.Range]] = {}
    for a in atoms:
        if a.ports is not None and a.proto not in whole:
            ports.setdefault(a.proto, []).append(a.ports)
    for proto in sorted(ports):
        groups.append((None, (ir.Proto(frozenset({proto})),
                              ir.Port(PROTO_NAMES[proto], "dport", _merge(ports[proto])))))
    for fam, proto in (("ip", 1), ("ip6", 58)):
        icmp = [a for a in atoms if a.family == fam]
        if not icmp:
            continue
        l3 = 4 if fam == "ip" else 6
        if any(a.icmp_type is None for a in icmp):
            groups.append((l3, (ir.Proto(frozenset({proto})), ir.Icmp(fam, None))))
            continue
        for t in sorted({a.icmp_type for a in icmp}):
            groups.append((l3, (ir.Proto(frozenset({proto})), ir.Icmp(fam, t))))
    return groups


def _family(a) -> int:
    return a.version


def address_variants(pr: PRule) -> list[tuple[Optional[int], tuple]]:
    """[(family or None, address matches)]."""
    tfam = None
    if pr.target is not None and pr.target.addr is not None:
        tfam = pr.target.addr.version
    if pr.saddr is None and pr.daddr is None:
        return [(tfam, ())]
    out = []
    for fam in (4, 6):
        if tfam is not None and fam != tfam:
            continue
        ms = []
        ok = True
        for field, addrs in (("saddr", pr.saddr), ("daddr", pr.daddr)):
            if addrs is None:
                continue
            mine = tuple(a for a in addrs if _family(a) == fam)
            if not mine:
                ok = False
                break
            ms.append(ir.Address(field, mine))
        if ok:
            out.append((fam, tuple(ms)))
    return out


def verdict(pr: PRule):
    a = pr.action
    if a == "accept":
        return ir.Accept()
    if a == "drop":
        return ir.Drop()
    if a == "reject":
        return ir.Reject(pr.reject_with)
    t = pr.target
    if a == "masquerade":
        return ir.Masquerade(t.ports if t else None)
    if a == "redirect":
        return ir.Redirect(t.ports)
    if a == "snat":
        return ir.Snat((t,))
    return ir.Dnat((t,))


def lower_rule(pr: PRule) -> list[ir.Rule]:
    variants = address_variants(pr)
    groups = service_groups(pr.services)
    iifs = [ir.Interface("iifname", n) for n in pr.iif] if pr.iif is not None else [None]
    oifs = [ir.Interface("oifname", n) for n in pr.oif] if pr.oif is not None else [None]
    tail = []
    if pr.states is not None:
        tail.append(ir.CtState(pr.states))
    if pr.status is not None:
        tail.append(ir.CtStatus(pr.status))
    if pr.limit is not None:
        tail.append(pr.limit)
    stmts = (pr.log,) if pr.log is not None else ()
    v = verdict(pr)
    out = []
    for vfam, addr_ms in variants:
        for gfam, g_ms in groups:
            if vfam is not None and gfam is not None and vfam != gfam:
                continue
            restrict = ()
            if vfam is not None and gfam is None and not addr_ms:
                # only the NAT target fixes the family: say so with an any-address match
                restrict = (ir.Address("daddr", (ANY[vfam],)),)
            for i in iifs:
                for o in oifs:
                    ms = tuple(m for m in (i, o) if m is not None) + addr_ms + restrict + g_ms \
                        + tuple(tail)
                    out.append(ir.Rule(ms, stmts, v, pr.comment, pr.loc))
    if not out:
        raise NeverMatches()
    return out


def lower(res: Resolver, helper_rules: list[ir.Rule]) -> tuple[ir.Ruleset, dict]:
    """The ruleset and, per policy rule (keyed by id), the IR rules it became."""
    chains: list[ir.Chain] = []
    expansion: dict[int, list[ir.Rule]] = {}
    if helper_rules:
        chains.append(ir.Chain(HELPER_CHAIN, tuple(helper_rules),
                               ir.BaseHook("filter", "prerouting", HELPER_PRIORITY, "accept"),
                               helper_rules[0].loc))
    nat = res.chains.get("nat")
    pre, post = [], []
    if nat is not None:
        for pr in nat.rules:
            rules = expansion[id(pr)] = lower_rule(pr)
            (pre if pr.action in ("dnat", "redirect") else post).extend(rules)
        if pre:
            chains.append(ir.Chain("prerouting", tuple(pre),
                                   ir.BaseHook("nat", "prerouting", -100, "accept"), nat.loc))
    for name in ("input", "forward", "output"):
        pc: Optional[PChain] = res.chains.get(name)
        if pc is None:
            continue
        rules = [] if pc.stateless else stateful_defaults(pc.loc)
        for pr in pc.rules:
            expansion[id(pr)] = lower_rule(pr)
            rules.extend(expansion[id(pr)])
        chains.append(ir.Chain(name, tuple(rules),
                               ir.BaseHook("filter", FILTER_HOOKS[name], 0, pc.policy), pc.loc))
    if post:
        chains.append(ir.Chain("postrouting", tuple(post),
                               ir.BaseHook("nat", "postrouting", 100, "accept"), nat.loc))
    return ir.Ruleset((ir.Table("inet", TABLE, tuple(chains)),)), expansion
