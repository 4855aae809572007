"""Applies nft commands (add/insert/delete/flush of tables, chains, sets, rules) in order and
produces the final IR Ruleset.  Shared by the text and JSON front ends."""

from __future__ import annotations

from typing import Optional

import attrs

from fwc import ir
from fwc.errors import FwcSyntaxError, Unsupported
from fwc.frontends import nft_values as V
from fwc.frontends.nft_ast import Concat, Sel, Stmt, VerdictS
from fwc.frontends.nft_lower import Ctx, in_table, lower_rules

PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
                  "srcnat": 100}
# nft 1.0.6's names in the link-layer families, and the hook each is valid in (None: any)
FAMILY_PRIORITY_NAMES = {
    "bridge": {"dstnat": (-300, "prerouting"), "filter": (-200, None), "out": (100, "output"),
               "srcnat": (300, "postrouting")},
    "netdev": {"filter": (0, None)},
    "arp": {"filter": (0, None)},
}
# the hooks the nat names are valid on in ip/ip6/inet tables: nft 1.0.6 takes them on prerouting
# and postrouting only (measured with nft -c); nft >= 1.0.9 also takes dstnat on output and
# srcnat on input, as the NAT core's own priorities there (Docker's nft backend writes them)
_IP_NAT_PRIORITY_HOOKS = {"dstnat": ("prerouting", "output"), "srcnat": ("postrouting", "input")}
HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
FAMILY_HOOKS = {"bridge": HOOKS, "netdev": ("ingress", "egress"), "arp": ("input", "output")}
CHAIN_TYPES = ("filter", "nat", "route")
# headers an arp table's packets do not have: nft 1.0.6 refuses them there ("conflicting
# protocols specified: arp vs. ip"), and `ct` (no conntrack for ARP: the kernel refuses it)
_NOT_IN_ARP = frozenset("""ip ip6 tcp udp udplite sctp dccp icmp icmpv6 igmp th ah esp comp gre
    gretap vxlan geneve dst hbh rt frag mh srh exthdr ipcomp ct""".split())
_IP_NODES = (ir.Address, ir.Port, ir.Icmp, ir.TcpFlags, ir.TcpOption, ir.CtState, ir.CtStatus,
             ir.CtDirection, ir.CtProto, ir.CtAddress, ir.CtPort, ir.CtExpire, ir.Helper,
             ir.CtCount, ir.Ttl, ir.Dscp, ir.Length, ir.AddrType, ir.Fragment)


def arp_conflict(node) -> Optional[str]:
    """What of IR match/statement `node` an ARP packet does not have (None: nothing)."""
    if isinstance(node, _IP_NODES):
        return type(node).__name__
    if isinstance(node, ir.Mark) and node.kind == "ct":
        return "ct mark"
    texts = (node.expr,) if isinstance(node, ir.FieldMatch) else \
        tuple(node.keys) if isinstance(node, (ir.SetMatch, ir.SetUpdate)) else ()
    for t in texts:
        if t.split()[0] in _NOT_IN_ARP:
            return t
    return None


@attrs.define
class _Chain:
    name: str
    loc: ir.Loc
    base: Optional[ir.BaseHook] = None
    rules: list = attrs.Factory(list)


@attrs.define
class _Table:
    family: str
    name: str
    loc: ir.Loc
    chains: dict = attrs.Factory(dict)
    sets: dict = attrs.Factory(dict)
    helpers: dict = attrs.Factory(dict)  # ct helper object name -> (helper type, l4 proto number)
    connlimits: dict = attrs.Factory(dict)  # set name -> locations of `add @set { K ct count }`
    counters: dict = attrs.Factory(dict)  # named counter objects: name -> ir.CounterObject
    limits: dict = attrs.Factory(dict)  # named limit objects: name -> ir.Limit
    element_locs: dict = attrs.Factory(dict)  # set name -> locations its elements were added at




class Builder:
    def __init__(self, source_line=None):
        self.tables: dict[tuple[str, str], _Table] = {}
        self.source_line = source_line

    # -- errors
    def syntax(self, msg, loc):
        return FwcSyntaxError(msg, loc, self.source_line(loc) if self.source_line else None)

    def unsupported(self, msg, loc):
        return Unsupported(msg, loc, self.source_line(loc) if self.source_line else None)

    # -- tables
    def check_family(self, family: str, loc) -> None:
        if family not in ir.NFT_FAMILIES:
            raise self.syntax(f"unknown table family '{family}'", loc)

    def add_table(self, family, name, loc, create=False) -> _Table:
        self.check_family(family, loc)
        key = (family, name)
        if key in self.tables:
            if create:
                raise self.syntax(f"table {family} {name} already exists", loc)
            return self.tables[key]
        t = self.tables[key] = _Table(family, name, loc)
        return t

    def table(self, family, name, loc) -> _Table:
        self.check_family(family, loc)
        t = self.tables.get((family, name))
        if t is None:
            raise self.syntax(f"table {family} {name} does not exist", loc)
        return t

    def delete_table(self, family, name, loc, destroy=False):
        if (family, name) not in self.tables:
            if destroy:
                return
            raise self.syntax(f"table {family} {name} does not exist", loc)
        del self.tables[(family, name)]

    def flush_table(self, family, name, loc):
        for c in self.table(family, name, loc).chains.values():
            c.rules.clear()

    def flush_ruleset(self):
        self.tables.clear()

    # -- chains
    def add_chain(self, t: _Table, name, loc, base: Optional[ir.BaseHook] = None, create=False):
        c = t.chains.get(name)
        if c is not None:
            if create:
                raise self.syntax(f"chain {name} already exists", loc)
            if base is not None:
                if c.base is not None and (c.base.type, c.base.hook, c.base.priority,
                                           c.base.devices) != \
                        (base.type, base.hook, base.priority, base.devices):
                    raise self.syntax(f"chain {name} cannot change its type, hook, priority or devices", loc)
                c.base = base
            return c
        c = t.chains[name] = _Chain(name, loc, base)
        return c

    def chain(self, t: _Table, name, loc) -> _Chain:
        c = t.chains.get(name)
        if c is None:
            raise self.syntax(f"chain {name} does not exist in table {t.family} {t.name}", loc)
        return c

    def delete_chain(self, t: _Table, name, loc):
        c = self.chain(t, name, loc)
        if c.rules:
            raise self.syntax(f"chain {name} is not empty", loc)
        del t.chains[name]

    def make_base(self, t: _Table, ctype, hook, prio, policy, loc, devices=None) -> ir.BaseHook:
        """devices: None when the chain names none, else the device names (`device`/`devices`)."""
        if ctype not in CHAIN_TYPES:
            raise self.syntax(f"unknown chain type '{ctype}'", loc)
        if t.family in ir.L2_FAMILIES:
            if ctype != "filter":
                raise self.syntax(f"chain type '{ctype}' {in_table(t.family)} (filter only)", loc)
            if hook not in FAMILY_HOOKS[t.family]:
                raise self.syntax(f"the {t.family} family has no hook '{hook}' (hooks: "
                                  f"{', '.join(FAMILY_HOOKS[t.family])})", loc)
        elif hook in ("ingress", "egress"):
            # inet ingress runs before the IP stack, where the IR's inet model does not reach
            raise self.unsupported(f"hook '{hook}' in an {t.family} table", loc)
        elif hook not in HOOKS:
            raise self.syntax(f"unknown hook '{hook}'", loc)
        if t.family == "netdev":
            if not devices:
                raise self.syntax(f"netdev chain with hook {hook} needs a device "
                                  "(`device NAME` or `devices = { ... }`)", loc)
        elif devices is not None:
            raise self.syntax(f"a {t.family} chain with hook {hook} cannot be bound to a device", loc)
        if policy not in ("accept", "drop"):
            raise self.syntax(f"unknown chain policy '{policy}'", loc)
        if t.family in ir.FAMILIES and (ctype, hook) in (("route", "prerouting"), ("route", "input"),
                                                         ("route", "forward"), ("route", "postrouting"),
                                                         ("nat", "forward")):
            # (nf_tables: a route chain is for output only, nat has no forward hook)
            raise self.syntax(f"a {ctype} chain on hook {hook} (the kernel refuses it: "
                              "Operation not supported)", loc)
        devs = tuple(sorted(set(devices or ())))
        for d in devs:
            if not d or len(d) > 15 or "/" in d or d in (".", ".."):
                raise self.syntax(f"invalid device name {d!r}", loc)
        return ir.BaseHook(ctype, hook, prio, policy, devs)

    def priority_name(self, t: _Table, name: str, hook: str, loc) -> Optional[int]:
        """The value of priority keyword `name` for a chain of table `t` on `hook`, None if
        the name is not one."""
        names = FAMILY_PRIORITY_NAMES.get(t.family)
        if names is None:
            hooks = _IP_NAT_PRIORITY_HOOKS.get(name)
            if hooks is not None and hook not in hooks:
                # nft: "invalid priority expression value in this context"
                raise self.syntax(f"priority '{name}' is valid only on hooks {' and '.join(hooks)} "
                                  f"(write a number, e.g. {PRIORITY_NAMES[name]}, on {hook})", loc)
            return PRIORITY_NAMES.get(name)
        got = names.get(name)
        if got is None:
            if name in PRIORITY_NAMES:
                raise self.syntax(f"priority '{name}' is not valid in the {t.family} family "
                                  f"(names: {', '.join(names)})", loc)
            return None
        value, only = got
        if only is not None and hook != only:
            raise self.syntax(f"priority '{name}' is valid only on hook {only} in the "
                              f"{t.family} family", loc)
        return value

    # -- sets
    def add_set(self, t: _Table, s: ir.NamedSet, loc):
        old = t.sets.get(s.name)
        if old is not None:
            if (old.types, old.data) != (s.types, s.data):
                raise self.syntax(f"set {s.name} exists with another type (the kernel refuses "
                                  "it: File exists)", loc)
            s = attrs.evolve(s, elements=old.elements + s.elements)
        t.sets[s.name] = s
        t.element_locs.setdefault(s.name, []).append((len(s.elements), loc))

    def add_elements(self, t: _Table, name, elements: tuple, loc, timeouts: tuple = ()):
        """`add element`: `timeouts` as NamedSet.element_timeouts (empty: none given)."""
        s = t.sets.get(name)
        if s is None:
            raise self.syntax(f"set {name} does not exist in table {t.family} {t.name}", loc)
        timed = ir.padded_timeouts(s.element_timeouts, len(s.elements)) + \
            ir.padded_timeouts(timeouts, len(elements))
        t.sets[name] = attrs.evolve(s, elements=s.elements + tuple(elements),
                                    element_timeouts=ir.compact_timeouts(timed))
        t.element_locs.setdefault(name, []).append((len(s.elements) + len(elements), loc))

    def lower_rules(self, t: _Table, chain: str, stmts: list, comment, loc) -> list[ir.Rule]:
        """The IR rules of one nft rule of `chain`: its meters declared, each anonymous chain
        (`jump { ... }`) made a user chain of the table named after `chain` (`c_anon1`)."""
        for k, st in enumerate(stmts):
            if isinstance(st, VerdictS) and st.body is not None:
                n = 1
                while f"{chain}_anon{n}" in t.chains:
                    n += 1
                name = f"{chain}_anon{n}"
                anon = self.add_chain(t, name, st.loc)
                for body, cmt, at in st.body:
                    anon.rules.extend(self.lower_rules(t, name, list(body), cmt, at))
                stmts[k] = VerdictS(st.kind, st.loc, name)
        self.declare_meters(t, stmts)
        return lower_rules(stmts, comment, loc, self.ctx(t))

    def declare_meters(self, t: _Table, stmts: list) -> None:
        """The dynamic set behind each `meter NAME { KEY ... }` of a rule (Stmt "setupdate"
        with a "meter" size), declared on first use; a second use must have the same key."""
        for st in stmts:
            if not (isinstance(st, Stmt) and st.kind == "setupdate" and "meter" in st.args):
                continue
            a = st.args
            key = a["key"]
            parts = key.parts if isinstance(key, Concat) else (key,)
            if not all(isinstance(x, Sel) for x in parts):
                raise self.unsupported("a meter keyed on something other than header or meta "
                                       "fields", st.loc)
            size = V.parse_int(a["meter"].text)
            if size is None or size <= 0:
                raise self.syntax(f"invalid meter size '{a['meter'].text}'", st.loc)
            flags = {"dynamic", "timeout"} if a.get("timeout") else {"dynamic"}  # (as nft does)
            s = ir.NamedSet(a["set"], tuple(x.text for x in parts), frozenset(flags), size=size)
            old = t.sets.get(s.name)
            if old is None:
                t.sets[s.name] = s
            elif old != s:
                raise self.syntax(f"meter {s.name}: a set of that name with another key or "
                                  "size exists", st.loc)

    def ctx(self, t: _Table) -> Ctx:
        return Ctx(t.family, t.sets, self.source_line, t.helpers, t.connlimits, t.counters,
                   t.limits)

    def _connlimit_sets(self, t: _Table, chains) -> set:
        """The sets behind `add @S { KEY ct count [over] N }` (read as ConnLimit): one rule's
        own connection lists, as xt_connlimit keeps them, only when nothing else uses S."""
        if not t.connlimits:
            return set()
        others = set()
        for c in chains:
            for r in c.rules:
                others |= _set_uses(r) | {m.name for m in r.matches if isinstance(m, ir.SetMatch)}
        for name, locs in t.connlimits.items():
            if len(locs) > 1 or name in others:
                raise Unsupported(f"set '{name}' counts connections for more than one rule or is "
                                  "also used otherwise (xt_connlimit lists are per rule)", locs[-1],
                                  self.source_line(locs[-1]) if self.source_line else None)
        return set(t.connlimits)

    # -- result
    def ruleset(self) -> ir.Ruleset:
        tables = []
        for t in self.tables.values():
            for c in t.chains.values():
                for r in c.rules:
                    v = r.verdict
                    targets = [v.chain] if isinstance(v, (ir.Jump, ir.Goto)) else []
                    if isinstance(v, ir.VerdictMap):
                        targets = [x.chain for _, x in v.elements if isinstance(x, (ir.Jump, ir.Goto))]
                    for target in targets:
                        if target not in t.chains:
                            raise self.syntax(f"jump to undefined chain '{target}'", r.loc)
            for s in t.sets.values():
                for i, e in enumerate(s.elements if s.data == "verdict" else ()):
                    v = e[1] if isinstance(e, tuple) and len(e) == 2 else None
                    if isinstance(v, (ir.Jump, ir.Goto)) and v.chain not in t.chains:
                        # located at the declaration or `add element` that brought it
                        loc = next((lc for n, lc in t.element_locs.get(s.name, ()) if n > i), t.loc)
                        raise self.syntax(f"map '{s.name}' has an element that jumps to undefined "
                                          f"chain '{v.chain}'", loc)
            chains = tuple(ir.Chain(c.name, tuple(c.rules), c.base, c.loc) for c in t.chains.values())
            own = self._connlimit_sets(t, chains)
            sets = tuple(attrs.evolve(s, elements=_canonical_elements(s)) for s in t.sets.values()
                         if s.name not in own)
            tables.append(absorb_hashlimit_sets(externalise_sets(mark_dynamic_sets(
                ir.Table(t.family, t.name, chains, sets, t.loc,
                         tuple(t.counters[k] for k in sorted(t.counters)),
                         tuple(ir.LimitObject(k, t.limits[k]) for k in sorted(t.limits)))))))
            looping = ir.jump_loop(tables[-1])
            if looping is not None:  # (nft: "Too many levels of symbolic links")
                raise self.syntax("this jump closes a loop of chains a base chain reaches (the "
                                  "kernel refuses it)", looping.loc)
            deep = ir.jump_too_deep(tables[-1])
            if deep is not None:  # (nft: "Too many links")
                raise self.syntax(ir.too_deep_message(deep[1]), deep[0].loc)
        return ir.Ruleset(tuple(tables))


_EXTERNAL_TYPES = {("ipv4_addr",): "ip", ("ipv6_addr",): "ip6"}
_LOOKUP_FIELDS = {"saddr": "src", "daddr": "dst"}


def externalise_sets(t: ir.Table) -> ir.Table:
    """An address set the ruleset declares but never fills (no elements, not dynamic) holds what
    is added from outside the ruleset: exactly an ExternalSet (ipset), looked up with SetLookup.
    Only sets whose every use is a plain `ip saddr|daddr @set` lookup are rewritten."""
    cands = {s.name: _EXTERNAL_TYPES[s.types] for s in t.sets
             if isinstance(s, ir.NamedSet) and not s.elements and s.data is None
             and s.flags <= {"interval"} and s.types in _EXTERNAL_TYPES}
    if not cands:
        return t
    for c in t.chains:
        for r in c.rules:
            for n in _set_uses(r):
                cands.pop(n, None)
            for m in r.matches:
                if isinstance(m, ir.SetMatch) and m.name in cands:
                    fam, _, field = m.keys[0].partition(" ") if len(m.keys) == 1 else ("", "", "")
                    if fam != cands[m.name] or field not in _LOOKUP_FIELDS:
                        cands.pop(m.name)
    if not cands:
        return t

    def rule(r: ir.Rule) -> ir.Rule:
        ms = tuple(ir.SetLookup(m.name, (_LOOKUP_FIELDS[m.keys[0].split()[1]],), m.negate)
                   if isinstance(m, ir.SetMatch) and m.name in cands else m for m in r.matches)
        return attrs.evolve(r, matches=ms) if ms != r.matches else r
    chains = tuple(attrs.evolve(c, rules=tuple(rule(r) for r in c.rules)) for c in t.chains)
    sets = tuple(ir.ExternalSet(s.name, cands[s.name], ("addr",), "interval" in s.flags)
                 if s.name in cands else s for s in t.sets)
    return attrs.evolve(t, chains=chains, sets=sets)


def mark_dynamic_sets(t: ir.Table) -> ir.Table:
    """A set the packet path adds to is dynamic (the kernel makes it so; nft 1.0.6's JSON
    listing omits the flag, its text listing shows it): one IR either way."""
    updated = {n for c in t.chains for r in c.rules for n in _packet_path_updates(r)}
    if not updated:
        return t
    sets = tuple(attrs.evolve(s, flags=s.flags | {"dynamic"})
                 if isinstance(s, ir.NamedSet) and s.name in updated and "dynamic" not in s.flags
                 else s for s in t.sets)
    return attrs.evolve(t, sets=sets)


def _packet_path_updates(r: ir.Rule) -> set:
    out = {s.set for s in r.statements if isinstance(s, ir.SetUpdate) and s.op in ("add", "update")}
    out |= {m.set for m in r.matches if isinstance(m, ir.SetLimit)}
    out |= {m.name for m in r.matches if isinstance(m, ir.HashLimit)}
    return out


def absorb_hashlimit_sets(t: ir.Table) -> ir.Table:
    """The dynamic set behind `update @s { key limit ... }` is what an iptables hashlimit table
    is; once its rules read as HashLimit, the set is part of that meaning, not a set of its own
    (unless something else uses it)."""
    names = {m.name for c in t.chains for r in c.rules for m in r.matches
             if isinstance(m, ir.HashLimit)}
    if not names:
        return t
    for c in t.chains:
        for r in c.rules:
            names -= {x.set for x in r.statements if isinstance(x, ir.SetUpdate)}
            names -= {m.name for m in r.matches if isinstance(m, ir.SetMatch)}
            if isinstance(r.verdict, ir.VerdictMap):
                names.discard(r.verdict.name)
    sets = tuple(s for s in t.sets if not (isinstance(s, ir.NamedSet) and s.name in names))
    return attrs.evolve(t, sets=sets) if len(sets) != len(t.sets) else t


def _set_uses(r: ir.Rule) -> set:
    """Names of sets a rule uses other than by a single-key SetMatch."""
    out = {s.set for s in r.statements if isinstance(s, ir.SetUpdate)}
    if isinstance(r.verdict, ir.VerdictMap) and r.verdict.name:
        out.add(r.verdict.name)
    out |= {m.name for m in r.matches if isinstance(m, ir.HashLimit)}
    out |= {m.set for m in r.matches if isinstance(m, ir.SetLimit)}
    return out


def _canonical_elements(s: ir.NamedSet) -> tuple:
    from fwc.frontends.nft_lower import tuple_order_key
    if s.data is None:
        return tuple(sorted(set(s.elements), key=tuple_order_key))
    return tuple(sorted(set(s.elements), key=lambda kv: tuple_order_key(kv[0])))
