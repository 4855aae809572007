"""Which nft tables and chains the output has: the `table=` and `inet=` options.

Each emitted chain holds entries: an IR rule plus the packet family it is rendered for and
whether it needs a `meta nfproto` guard (family-specific rules in a merged inet table)."""

from __future__ import annotations

import bisect
from typing import Optional

import attrs

from fwc import ir
from fwc.errors import FwcError
from fwc.backends.nft_names import safe_name


@attrs.define
class Entry:
    rule: ir.Rule
    l3: Optional[str]  # ip / ip6, None = both (only in IR inet tables)
    guard: bool  # prefix `meta nfproto <l3>`
    source: "ir.Table"  # whose chain names the rule's jumps refer to
    source6: Optional["ir.Table"] = None  # l3 == "both": the ip6 table of the shared rule


@attrs.define
class OutChain:
    name: str
    base: Optional[ir.BaseHook]
    entries: list[Entry]
    loc: ir.Loc
    final_drop: list[str] = attrs.Factory(list)  # families to drop at the end (policy emulation)
    priorities: tuple[int, ...] = ()
    hooks: tuple[str, ...] = ()  # hooks of the base chains that reach it


@attrs.define
class OutTable:
    family: str
    name: str
    chains: list[OutChain]
    sets: list[ir.ExternalSet]
    # (source table id, IR chain name) -> emitted chain name
    chain_names: dict
    set_names: dict
    set_sources: dict = attrs.Factory(dict)  # set name -> the source table declaring it
    counters: list = attrs.Factory(list)  # ir.CounterObject, each name once
    counter_names: dict = attrs.Factory(dict)  # counter name -> emitted name
    # (emitted name, ir.Limit) of every named limit object; (id(source table), name) -> emitted
    # name: each source table's objects stay their own buckets
    limits: list = attrs.Factory(list)
    limit_names: dict = attrs.Factory(dict)


def l3_of(table: ir.Table) -> Optional[str]:
    return None if table.family not in ("ip", "ip6") else table.family


def lcs_merge(a: list[ir.Rule], b: list[ir.Rule]) -> list[tuple[Optional[ir.Rule], Optional[ir.Rule]]]:
    """Align two rule lists: pairs (x, y) with x == y for common rules, else one side None.
    Each side's order is kept, so each family still sees exactly its own rule sequence.
    A longest common subsequence, found as the longest increasing run of matching positions
    (Hunt-Szymanski): rules are compared once each through a dict, so two 10,000-rule chains
    cost about as much as reading them, not 10^8 comparisons."""
    at: dict = {}
    for j, y in enumerate(b):
        at.setdefault(y, []).append(j)
    tails: list[int] = []  # tails[k]: smallest b index ending a common run of length k + 1
    tail_pair: list[int] = []  # the pair (index into pairs) that ends it
    pairs: list[tuple[int, int, int]] = []  # (i, j, previous pair or -1)
    for i, x in enumerate(a):
        for j in reversed(at.get(x, ())):  # (descending: one match per i in a run)
            k = bisect.bisect_left(tails, j)
            pairs.append((i, j, tail_pair[k - 1] if k else -1))
            if k == len(tails):
                tails.append(j)
                tail_pair.append(len(pairs) - 1)
            else:
                tails[k], tail_pair[k] = j, len(pairs) - 1
    matched: list[tuple[int, int]] = []
    p = tail_pair[-1] if tail_pair else -1
    while p >= 0:
        i, j, p = pairs[p]
        matched.append((i, j))
    matched.reverse()
    out: list[tuple[Optional[ir.Rule], Optional[ir.Rule]]] = []
    i = j = 0
    for mi, mj in matched:
        out += [(x, None) for x in a[i:mi]] + [(None, y) for y in b[j:mj]]
        out.append((a[mi], b[mj]))
        i, j = mi + 1, mj + 1
    out += [(x, None) for x in a[i:]] + [(None, y) for y in b[j:]]
    return out


def plan(ruleset: ir.Ruleset, table: Optional[str], inet: bool) -> list[OutTable]:
    groups: dict[tuple[str, str], list[ir.Table]] = {}
    for t in ruleset.tables:
        fam = "inet" if (inet and t.family in ("ip", "ip6")) else t.family
        key = (fam, table if table is not None else t.name)
        groups.setdefault(key, []).append(t)
    return [plan_table(fam, name, srcs) for (fam, name), srcs in groups.items()]


def plan_table(family: str, name: str, sources: list[ir.Table]) -> OutTable:
    table_names = {t.name for t in sources}
    prefix_needed = len(table_names) > 1
    # mapped chain name -> {source family: (table, chain)}
    by_name: dict[str, dict[str, tuple[ir.Table, ir.Chain]]] = {}
    mapped: dict[tuple[int, str], str] = {}
    for t in sources:
        for c in t.chains:
            m = c.name if (not prefix_needed or t.name == "filter") else f"{t.name}_{c.name}"
            slot = by_name.setdefault(m, {})
            if t.family in slot:
                raise FwcError(f"chain {c.name} of table {t.name} and chain "
                               f"{slot[t.family][1].name} of table {slot[t.family][0].name} "
                               f"would both be called {m} in nft table {name}", c.loc)
            slot[t.family] = (t, c)
            mapped[(id(t), c.name)] = m
    # base chains of different families that cannot share one nft chain are split apart
    split: dict[str, dict[str, tuple[ir.Table, ir.Chain]]] = {}
    for m, slot in by_name.items():
        bases = {(c.base.type, c.base.hook, c.base.priority) if c.base else None
                 for _, c in slot.values()}
        if len(slot) > 1 and len(bases) > 1:
            for fam, tc in slot.items():
                split[f"{m}_{fam}"] = {fam: tc}
                mapped[(id(tc[0]), tc[1].name)] = f"{m}_{fam}"
        else:
            split[m] = slot
    taken: set[str] = set()
    emitted: dict[str, str] = {}
    for m in split:
        emitted[m] = safe_name(m, taken)
        taken.add(emitted[m])
    chain_names = {k: emitted[v] for k, v in mapped.items()}
    prios = {id(t): (ir.reaching_bases(t, "priority"), ir.reaching_bases(t, "hook"))
             for t in sources}
    chains = [build_chain(emitted[m], slot, family, prios) for m, slot in split.items()]
    declared: dict[str, ir.ExternalSet] = {}
    set_names: dict[str, str] = {}
    set_sources: dict[str, ir.Table] = {}
    set_taken: set[str] = set()  # (one set, grown: rebuilding it per set was quadratic)
    for t in sources:
        for s in t.sets:
            prev = declared.get(s.name)
            if prev is not None:
                if prev != s:
                    raise FwcError(f"set {s.name} is declared with two different types", t.loc)
                continue
            declared[s.name] = s
            set_sources[s.name] = t
            set_names[s.name] = got = safe_name(s.name, set_taken)
            set_taken.add(got)
    sets = list(declared.values())
    counters: dict[str, ir.CounterObject] = {}
    for t in sources:
        for k in t.counters:
            if counters.setdefault(k.name, k) != k:
                raise FwcError(f"counter {k.name} is declared with two different counts", t.loc)
    counter_names: dict[str, str] = {}
    counter_taken: set[str] = set()
    for k in counters:
        counter_names[k] = got = safe_name(k, counter_taken)
        counter_taken.add(got)
    limits, limit_names, limit_taken = [], {}, set()
    for t in sources:
        for lo in t.limits:
            limit_names[(id(t), lo.name)] = got = safe_name(lo.name, limit_taken)
            limit_taken.add(got)
            limits.append((got, lo.limit))
    return OutTable(family, name, chains, sets, chain_names, set_names, set_sources,
                    list(counters.values()), counter_names, limits, limit_names)


def _needs_guard(rule: ir.Rule, fam: str) -> bool:
    """A family-specific rule in a merged inet table needs `meta nfproto` unless one of its
    matches already holds only for that family (`ip saddr ...`: nft adds the test itself)."""
    return ir.required_family(rule.matches) != fam


def build_chain(name: str, slot: dict, family: str, prios: dict) -> OutChain:
    fams = list(slot)
    any_table, any_chain = next(iter(slot.values()))
    priorities = tuple(sorted({p for t, c in slot.values()
                               for p in prios[id(t)][0].get(c.name, ())}))
    hooks = tuple(sorted({h for t, c in slot.values() for h in prios[id(t)][1].get(c.name, ())}))
    if len(fams) == 1:
        t, c = slot[fams[0]]
        merged_inet = family == "inet" and t.family != "inet"
        guard = merged_inet and c.base is not None
        entries = [Entry(r, l3_of(t), guard and _needs_guard(r, t.family), t) for r in c.rules]
        out = OutChain(name, c.base, entries, c.loc, priorities=priorities, hooks=hooks)
        if guard and c.base.policy == "drop":  # other families must not meet this policy
            out.base = attrs.evolve(c.base, policy="accept")
            out.final_drop = [t.family]
        return out
    (t4, c4), (t6, c6) = slot["ip"], slot["ip6"]
    entries = []
    for r4, r6 in lcs_merge(list(c4.rules), list(c6.rules)):
        if r4 is not None and r6 is not None and ir.per_rule_state(r4.matches):
            # (the two rules keep a state each, iptables' and ip6tables': one inet rule would
            # share one bucket or counter between the families)
            entries.append(Entry(r4, "ip", _needs_guard(r4, "ip"), t4))
            entries.append(Entry(r6, "ip6", _needs_guard(r6, "ip6"), t6))
        elif r4 is not None and r6 is not None:
            entries.append(Entry(r4, "both", False, t4, t6))  # resolved when rendering
        elif r4 is not None:
            entries.append(Entry(r4, "ip", _needs_guard(r4, "ip"), t4))
        else:
            entries.append(Entry(r6, "ip6", _needs_guard(r6, "ip6"), t6))
    base = c4.base
    final_drop = []
    if base is not None and c4.base.policy != c6.base.policy:
        base = attrs.evolve(base, policy="accept")
        final_drop = [f for f, c in (("ip", c4), ("ip6", c6)) if c.base.policy == "drop"]
    return OutChain(name, base, entries, c4.loc, final_drop, priorities, hooks)
