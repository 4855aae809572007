"""Resolved policy -> IR.  One inet table `fwc`; a rule is split per address family only when
its addresses (or ICMP types, or NAT target) need it, and per protocol because one IR rule
matches one protocol's ports."""

from __future__ import annotations

import functools
import ipaddress
from typing import Optional

import attrs

from fwc import ir
from fwc.policy.resolve import PChain, PRule, Resolver, SvcAtom

TABLE = "fwc"
FILTER_HOOKS = {"input": "input", "forward": "forward", "output": "output"}
HELPER_CHAIN = "ct_helpers"
# nft can attach a helper only to an existing (new, unconfirmed) conntrack entry: after
# conntrack (-200), and before dstnat (-100) so it sees the packet as sent, like iptables does
HELPER_PRIORITY = -150
# iptables attaches it as a template in the raw table instead: the same for new connections
IPTABLES_HELPER_PRIORITY = ir.TABLE_PRIORITY["raw"]
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}
PROTO_PORT_KEYS = ("meta l4proto", "th dport")
ANY = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


class NeverMatches(Exception):
    """The rule's constraints leave no address family (e.g. from IPv4 only, to IPv6 only)."""


def stateful_defaults(loc: ir.Loc) -> list[ir.Rule]:
    """`ct state invalid drop`; the fast-path accept before it comes from the optimiser's
    fast-path pass (fwc.passes.fastpath.add_fast_path), called by the compiler."""
    return [ir.Rule((ir.CtState(frozenset({"INVALID"})),), verdict=ir.Drop(), loc=loc)]


def _merge(ranges: list[ir.Range]) -> tuple[ir.Range, ...]:
    out: list[ir.Range] = []
    for r in sorted(ranges, key=lambda r: (r.lo, r.hi)):
        if out and r.lo <= out[-1].hi + 1:
            out[-1] = ir.Range(out[-1].lo, max(out[-1].hi, r.hi))
        else:
            out.append(r)
    return tuple(out)


def _by_identity(cache: dict, values, compute, tag=None):
    """compute(values), remembered by the identity of the values (and tag): rules naming the
    same objects share the result (the resolver hands out one list of atoms/addresses per
    name).  The cache keeps the values alive, so an id is never reused while its entry
    exists."""
    key = (tag, *map(id, values))
    hit = cache.get(key)
    if hit is None:
        if len(cache) > 4096:
            cache.clear()
        hit = cache[key] = (tuple(values), compute(values))
    return hit[1]


_GROUPS_CACHE: dict = {}


def service_groups(atoms: Optional[list[SvcAtom]]) -> list[tuple[Optional[int], tuple]]:
    """[(family or None, matches)]: one entry per IR rule the services need."""
    if atoms is None:
        return [(None, ())]
    return list(_by_identity(_GROUPS_CACHE, atoms, _service_groups))


def _service_groups(atoms: list[SvcAtom]) -> list[tuple[Optional[int], tuple]]:
    whole = sorted({a.proto for a in atoms if a.ports is None and a.family is None})
    groups: list[tuple[Optional[int], tuple]] = []
    if whole:
        groups.append((None, (ir.Proto(frozenset(whole)),)))
    ports: dict[int, list[ir.Range]] = {}
    for a in atoms:
        if a.ports is not None and a.proto not in whole:
            ports.setdefault(a.proto, []).append(a.ports)
    if len(ports) > 1:
        # ports of several protocols: one rule looking (protocol, port) up, as `tcp dport`
        # means `meta l4proto tcp th dport` (the ports sit at the same offset in all of them)
        elems = tuple((proto, r.lo if r.lo == r.hi else r)
                      for proto in sorted(ports) for r in _merge(ports[proto]))
        groups.append((None, (ir.SetMatch(PROTO_PORT_KEYS, None, elems),)))
    elif ports:
        ((proto, ranges),) = ports.items()
        groups.append((None, (ir.Proto(frozenset({proto})),
                              ir.Port(PROTO_NAMES[proto], "dport", _merge(ranges)))))
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


_FIELD_CACHE: dict = {}


def _per_family(field: str, addrs: list) -> tuple:
    """(IPv4 Address match or None, IPv6 one or None) of one rule part, remembered by the
    identity of the resolved addresses (rules naming the same objects share the matches)."""
    return _by_identity(_FIELD_CACHE, addrs, _FIELD_BUILD[field], field)


def _field_matches(field: str, values) -> tuple:
    d = _disjoint(values)
    v4 = tuple(a for a in d if a.version == 4)
    v6 = tuple(a for a in d if a.version == 6)
    return (ir.Address(field, v4) if v4 else None, ir.Address(field, v6) if v6 else None)


_FIELD_BUILD = {f: functools.partial(_field_matches, f) for f in ("saddr", "daddr")}


def address_variants(pr: PRule) -> list[tuple[Optional[int], tuple]]:
    """[(family or None, address matches)]."""
    tfam = None
    if pr.target is not None and pr.target.addr is not None:
        tfam = pr.target.addr.version
    if pr.saddr is None and pr.daddr is None:
        return [(tfam, ())]
    fields = [_per_family(field, addrs) for field, addrs in (("saddr", pr.saddr),
                                                              ("daddr", pr.daddr))
              if addrs is not None]
    out = []
    for fam in (4, 6):
        if tfam is not None and fam != tfam:
            continue
        ms = tuple([f[0] if fam == 4 else f[1] for f in fields])
        if all(m is not None for m in ms):  # (`None in ms` would call Address.__eq__)
            out.append((fam, ms))
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


def _per_protocol(group: tuple) -> list[tuple]:
    """A service group's `meta l4proto . th dport` lookup as one group per protocol."""
    fam, ms = group
    if not (len(ms) == 1 and isinstance(ms[0], ir.SetMatch) and ms[0].keys == PROTO_PORT_KEYS):
        return [group]
    ports: dict[int, list[ir.Range]] = {}
    for proto, p in ms[0].elements:
        ports.setdefault(proto, []).append(p if isinstance(p, ir.Range) else ir.Range(p, p))
    return [(fam, (ir.Proto(frozenset({proto})), ir.Port(PROTO_NAMES[proto], "dport",
                                                         _merge(rs))))
            for proto, rs in sorted(ports.items())]


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
    if ir.nat_maps_ports(v):
        # (nft: "transport protocol mapping is only valid after transport protocol match":
        # a NAT port needs one protocol per rule, not a protocol . port lookup)
        groups = [x for g in groups for x in _per_protocol(g)]
    tail = tuple(tail)
    ifaces = [tuple(m for m in (i, o) if m is not None) for i in iifs for o in oifs] \
        if pr.iif is not None or pr.oif is not None else [()]
    out = []
    for vfam, addr_ms in variants:
        for gfam, g_ms in groups:
            if vfam is not None and gfam is not None and vfam != gfam:
                continue
            restrict = ()
            if vfam is not None and gfam is None and not addr_ms:
                # only the NAT target fixes the family: say so with an any-address match
                restrict = (ir.Address("daddr", (ANY[vfam],)),)
            rest = addr_ms + restrict + g_ms + tail
            for io in ifaces:
                out.append(ir.Rule(io + rest, stmts, v, pr.comment, pr.loc))
    if not out:
        raise NeverMatches()
    if pr.limit is not None:
        # one token bucket per IR rule: make the buckets the same for every backend, also
        # per family (iptables and ip6tables cannot share one; an inet rule would)
        out = [x for r in out for f in _each_family(r) for x in split_rule(f)]
    return out


def _each_family(rule: ir.Rule) -> list[ir.Rule]:
    """A rule both families can match as one rule per family (`meta nfproto` says which),
    else the rule."""
    if rule_families(rule) != {4, 6}:
        return [rule]
    return [attrs.evolve(rule, matches=(ir.FieldMatch("meta nfproto", (name,)),) + rule.matches)
            for name in ("ipv4", "ipv6")]


_DISJOINT_CACHE: dict = {}


def _disjoint(values) -> list:
    if len(values) == 1:
        return list(values)
    return list(_by_identity(_DISJOINT_CACHE, values, _merge_addresses))


def _merge_addresses(values) -> list:
    """The same addresses as sorted, disjoint, merged intervals: a prefix where the interval is
    one, else a range.  nft refuses overlapping set elements, and one-value-per-rule splitting
    must never let a packet match twice."""
    out = []
    for fam in (4, 6):
        mine = [v for v in values if v.version == fam]
        if len(mine) == 1 and not isinstance(mine[0], ir.AddrRange):
            out.append(mine[0])  # one prefix: already its own merged interval
            continue
        ivs = []
        for v in mine:
            if isinstance(v, ir.AddrRange):
                ivs.append((int(v.lo), int(v.hi)))
            else:
                ivs.append((int(v.network_address), int(v.broadcast_address)))
        merged: list = []
        for lo, hi in sorted(ivs):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        make = ipaddress.IPv4Address if fam == 4 else ipaddress.IPv6Address
        for lo, hi in merged:
            nets = list(ipaddress.summarize_address_range(make(lo), make(hi)))
            out.append(nets[0] if len(nets) == 1 else ir.AddrRange(make(lo), make(hi)))
    return out


def split_rule(rule: ir.Rule) -> list[ir.Rule]:
    """One rule -> equivalent rules whose addresses and protocols are single values and whose
    port lists fit multiport.  Exact because the pieces are disjoint (a packet matches at most
    one), so each packet meets the statements, limit and verdict at most once."""
    for i, m in enumerate(rule.matches):
        if isinstance(m, ir.SetMatch) and m.keys == PROTO_PORT_KEYS:
            return [x for proto_port in _proto_port_matches(m)
                    for x in split_rule(attrs.evolve(rule, matches=(
                        rule.matches[:i] + proto_port + rule.matches[i + 1:])))]
    pieces: list[tuple] = [()]
    for m in rule.matches:
        options: list = [m]
        if isinstance(m, ir.Address) and not m.negate and len(m.values) > 1:
            options = [ir.Address(m.field, (v,)) for v in _disjoint(m.values)]
        elif isinstance(m, ir.Proto) and not m.negate and len(m.protos) > 1:
            options = [ir.Proto(frozenset({p})) for p in sorted(m.protos)]
        elif isinstance(m, ir.Port) and not m.negate and \
                ir.multiport_slots(m.ranges) > ir.MULTIPORT_SLOTS:
            options = [ir.Port(m.proto, m.field, c) for c in ir.multiport_chunks(m.ranges)]
        pieces = [p + (o,) for p in pieces for o in options]
    if len(pieces) == 1 and pieces[0] == rule.matches:
        return [rule]
    return [attrs.evolve(rule, matches=p) for p in pieces]


def _proto_port_matches(m: ir.SetMatch) -> list[tuple]:
    """The (protocol, port) lookup as one (Proto, Port) pair per protocol: iptables needs -p."""
    return [(ir.Proto(frozenset({p})), ir.Port(PROTO_NAMES[p], "dport", _merge(rs)))
            for p, rs in ir.proto_port_ranges(m).items()]


def rule_families(rule: ir.Rule) -> set[int]:
    """The address families a rule of an inet table can match."""
    fams = {4, 6}
    for m in rule.matches:
        if ir.family_test(m) is not None:
            fams &= {4 if ir.family_test(m) == "ip" else 6}
        elif isinstance(m, ir.Address) and not m.negate:
            fams &= {a.version for a in m.values}
        elif isinstance(m, ir.Icmp):
            fams &= {4 if m.family == "ip" else 6}
    return fams


# nft's icmpx reject types, as each family's ICMP says them (what nft itself sends)
REJECT_BY_FAMILY = {4: {"no-route": "net-unreachable"}, 6: {}}


def _for_family(rule: ir.Rule, fam: int) -> ir.Rule:
    """Drop the any-address matches that only said which family the rule is for, and name the
    reject type the way the family's ICMP does."""
    ms = tuple(m for m in rule.matches
               if not (isinstance(m, ir.Address) and m.values == (ANY[fam],))
               and ir.family_test(m) is None)
    if len(ms) != len(rule.matches):
        rule = attrs.evolve(rule, matches=ms)
    v = rule.verdict
    if isinstance(v, ir.Reject) and v.with_ in REJECT_BY_FAMILY[fam]:
        rule = attrs.evolve(rule, verdict=ir.Reject(REJECT_BY_FAMILY[fam][v.with_]))
    return rule


def _unbundle(chain: ir.Chain, extra: list) -> ir.Chain:
    """iptables rules have one target: log-and-decide becomes LOG then the verdict.  With a rate
    limit the two must share one token bucket, so the matches jump to a small chain instead."""
    rules = []
    for r in chain.rules:
        if not r.statements or r.verdict is None:
            rules.append(r)
            continue
        stmt_rule = attrs.evolve(r, verdict=None)
        verdict_rule = attrs.evolve(r, statements=())
        if any(isinstance(m, ir.Limit) for m in r.matches):
            name = f"{chain.name}_L{r.loc.line}_{len(extra) + 1}"
            extra.append(ir.Chain(name, (attrs.evolve(stmt_rule, matches=()),
                                         attrs.evolve(verdict_rule, matches=())), None, r.loc))
            rules.append(attrs.evolve(r, statements=(), verdict=ir.Jump(name)))
        else:
            rules.extend((stmt_rule, verdict_rule))
    return attrs.evolve(chain, rules=tuple(rules))


def _as_template_chain(c: ir.Chain) -> ir.Chain:
    """The helper chain as iptables has it: in the raw table, `-j CT --helper` templates."""
    rules = tuple(attrs.evolve(r, statements=tuple(
        attrs.evolve(s, template=True) if isinstance(s, ir.CtHelperSet) else s
        for s in r.statements)) for r in c.rules)
    return attrs.evolve(c, rules=rules,
                        base=attrs.evolve(c.base, priority=IPTABLES_HELPER_PRIORITY))


def split_ruleset(ruleset: ir.Ruleset) -> ir.Ruleset:
    """The inet table as one `ip` and one `ip6` table of single-valued rules (what iptables and
    ip6tables can express), each holding only the rules that can match its family."""
    tables = []
    for t in ruleset.tables:
        for fam, fname in ((4, "ip"), (6, "ip6")):
            chains = [attrs.evolve(c, rules=tuple(
                x for r in c.rules if fam in rule_families(r)
                for x in split_rule(_for_family(r, fam)))) for c in t.chains]
            extra: list = []
            chains = [_unbundle(c, extra) for c in chains] + extra
            chains = [_as_template_chain(c) if c.name == HELPER_CHAIN else c for c in chains]
            tables.append(attrs.evolve(t, family=fname, chains=tuple(chains)))
    return ir.Ruleset(tuple(tables))


def lower(res: Resolver, helper_rules: list[ir.Rule], never=None) -> tuple[ir.Ruleset, dict]:
    """The ruleset and, per policy rule (keyed by id), the IR rules it became.  `never(pr)`
    gives the exception to raise for a rule that can match no packet."""

    def lower_rule_checked(pr: PRule) -> list[ir.Rule]:
        try:
            return lower_rule(pr)
        except NeverMatches:
            if never is None:
                raise
            raise never(pr) from None

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
            rules = expansion[id(pr)] = lower_rule_checked(pr)
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
            expansion[id(pr)] = lower_rule_checked(pr)
            rules.extend(expansion[id(pr)])
        chains.append(ir.Chain(name, tuple(rules),
                               ir.BaseHook("filter", FILTER_HOOKS[name], 0, pc.policy), pc.loc))
    if post:
        chains.append(ir.Chain("postrouting", tuple(post),
                               ir.BaseHook("nat", "postrouting", 100, "accept"), nat.loc))
    return ir.Ruleset((ir.Table("inet", TABLE, tuple(chains)),)), expansion
