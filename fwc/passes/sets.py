"""Sets: rules that differ in one match and agree on everything else become one rule whose
match holds the union of the values (an nft anonymous set: `ip saddr { ... }`).

Mergeable matches (non-negated): addresses of one family and field, ports of one protocol and
field, protocols.  Two rules r1 (earlier) and r2 merge at r1's position when
- their other matches are equal and in the same order, statements and verdict are equal, and
  nothing in them is stateful;
- a packet matching both does the same either way: the verdict ends the chain, or the two
  differing matches are disjoint;
- r2 may move up to r1: it commutes (see analysis.commute) with every rule in between.
A 10,000-line blocklist of `-s X -j DROP` therefore becomes one set lookup.  Values are
normalised (overlaps and neighbours merged) so nft never sees overlapping intervals.
"""

from __future__ import annotations

import bisect
from typing import Optional

from fwc import ir
from fwc.passes.analysis import (
    addr_intervals, addr_values, addr_version, commute, ends_chain, is_stateful,
    matches_disjoint, port_values)
from fwc.passes.notes import Explain, Notes

MAX_DISTANCE = 200  # rules an r2 may move over (bounds the cost of commute checks)


def _slot_key(m: ir.Match):
    """Hashable description of what a mergeable match is about, or None."""
    if getattr(m, "negate", True):
        return None
    if isinstance(m, ir.Address):
        v = addr_version(m)
        return ("addr", m.field, v) if v is not None else None
    if isinstance(m, ir.Port) and m.field in ("sport", "dport", "port"):
        return ("port", m.proto, m.field)
    if isinstance(m, ir.Proto):
        return ("proto",)
    return None


def _union_all(ms: list) -> ir.Match:
    a = ms[0]
    if isinstance(a, ir.Address):
        ivs = [(lo, hi) for m in ms for _v, lo, hi in addr_intervals(m.values)]
        return ir.Address(a.field, addr_values(addr_version(a), ivs))
    if isinstance(a, ir.Port):
        return ir.Port(a.proto, a.field, port_values(x for m in ms for x in m.ranges))
    return ir.Proto(frozenset().union(*(m.protos for m in ms)))


def _intervals(m: ir.Match) -> list[tuple[int, int]]:
    """The values of a mergeable match as (lo, hi) integer intervals."""
    if isinstance(m, ir.Address):
        return [(lo, hi) for _v, lo, hi in addr_intervals(m.values)]
    if isinstance(m, ir.Port):
        return [(x.lo, x.hi) for x in m.ranges]
    return [(p, p) for p in m.protos]


def _keys(r: ir.Rule):
    """(signature, slot index) for each mergeable slot of the rule."""
    if is_stateful(r):
        return []
    out = []
    for i, m in enumerate(r.matches):
        sk = _slot_key(m)
        if sk is not None:
            rest = r.matches[:i] + r.matches[i + 1:]
            out.append(((sk, i, rest, r.statements, r.verdict), i))
    return out


class _Group:
    """Rules merged at one output position.  The values of the merged slot are collected in a
    list and the rule rebuilt only when asked (a 10,000-rule blocklist stays linear)."""

    __slots__ = ("_rule", "slot", "count", "comments", "keys", "extra", "_dirty", "_los",
                 "_his", "_ivslot")

    def __init__(self, rule: ir.Rule):
        # slot: the match index merged so far (-1 until the first merge fixes it)
        self._rule, self.slot, self.count, self.comments = rule, -1, 1, {rule.comment}
        self.keys: list = []
        self.extra: list = []  # matches merged into the slot since the rule was last built
        self._dirty = False
        # the merged slot's values as sorted disjoint intervals (lows, highs), kept as rules
        # join: joins whose verdict does not end the chain must not overlap, so this is a
        # bisection per join, not a rebuild of the whole set (None: not needed yet)
        self._los: Optional[list[int]] = None
        self._his: list[int] = []
        self._ivslot = -1  # the slot _los/_his describe (before the first merge, any one)

    def add(self, m: ir.Match) -> None:
        self.extra.append(m)
        self._dirty = True
        if self._los is not None and self._ivslot == self.slot:
            self._insert(m)
        else:
            self._los = None  # (built for another slot, or not yet: rebuilt when asked)

    def _insert(self, m: ir.Match) -> None:
        """Add m's values to the union kept as sorted disjoint intervals (values of rules that
        end the chain may overlap: they are merged, so bisection stays right)."""
        los, his = self._los, self._his
        for lo, hi in _intervals(m):
            k = bisect.bisect_right(los, lo)
            if k and his[k - 1] >= lo:  # (the interval before reaches it)
                k -= 1
                lo = los[k]
            j = k
            while j < len(los) and los[j] <= hi:
                hi = max(hi, his[j])
                j += 1
            los[k:j] = [lo]
            his[k:j] = [hi]

    def overlaps(self, slot: int, m: ir.Match) -> bool:
        """Whether `m` shares a value with the group's match in `slot` (disjoint so far)."""
        if self._los is None or self._ivslot != slot:
            self._los, self._his, self._ivslot = [], [], slot
            for x in [self._rule.matches[slot]] + (self.extra if slot == self.slot else []):
                self._insert(x)
        for lo, hi in _intervals(m):
            k = bisect.bisect_right(self._los, hi)  # intervals starting at or before hi
            if k and self._his[k - 1] >= lo:
                return True
            # (disjoint and sorted: only the last one starting before hi can reach lo)
        return False

    def commutes_with(self, r: ir.Rule) -> bool:
        """analysis.commute(self.rule, r), without rebuilding a large merged rule when a
        match of r's is disjoint from the merged values (two interleaved blocklists, e.g.
        `-s X -j LOG` / `-s X -j DROP`, stay linear)."""
        if self.slot == -1 or not self._dirty:
            return commute(self.rule, r)
        base = self._rule
        if is_stateful(base) or is_stateful(r):
            return False
        key = _slot_key(base.matches[self.slot])
        if any(_slot_key(m) == key and not self.overlaps(self.slot, m) for m in r.matches):
            return True  # (no packet matches both)
        others = base.matches[:self.slot] + base.matches[self.slot + 1:]
        if any(matches_disjoint(x, y) for x in others for y in r.matches):
            return True
        return commute(self.rule, r)

    @property
    def rule(self) -> ir.Rule:
        if self._dirty:
            r = self._rule
            m = _union_all([r.matches[self.slot]] + self.extra)
            self._rule = ir.Rule(r.matches[:self.slot] + (m,) + r.matches[self.slot + 1:],
                                 r.statements, r.verdict, r.comment, r.loc)
            self.extra, self._dirty = [], False
        return self._rule


def merge_sets(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("sets", explain)
    tables = []
    for t in rs.tables:
        chains = tuple(_merge_chain(c, notes) for c in t.chains)
        tables.append(ir.Table(t.family, t.name, chains, t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))


def _merge_chain(c: ir.Chain, notes: Notes) -> ir.Chain:
    out: list[Optional[_Group]] = []  # output positions; each holds a group (maybe of one)
    open_: dict = {}  # signature -> output index of the group with that signature
    for r in c.rules:
        placed = False
        for key, slot in _keys(r):
            gi = open_.get(key)
            if gi is None:
                continue
            g = out[gi]
            if g.slot not in (-1, slot) or not _can_join(g, r, slot, out, gi):
                continue
            if g.slot == -1:  # the other signatures described the rule before the union
                g.slot = slot
                for k in g.keys:
                    if k != key and open_.get(k) == gi:
                        del open_[k]
                g.keys = [key]
            g.add(r.matches[slot])
            g.count += 1
            g.comments.add(r.comment)
            placed = True
            break
        if placed:
            continue
        g = _Group(r)
        out.append(g)
        gi = len(out) - 1
        for key, _slot in _keys(r):
            open_[key] = gi  # the newest group is the nearest one to join
            g.keys.append(key)
    if all(g.count == 1 for g in out):
        return c
    rules = []
    for g in out:
        r = g.rule
        if g.count > 1:
            comment = r.comment if len(g.comments) == 1 else None
            r = ir.Rule(r.matches, r.statements, r.verdict, comment, r.loc)
            notes.info(f"chain {c.name}: {g.count} rules merged into one set match", r.loc)
        rules.append(r)
    return ir.Chain(c.name, tuple(rules), c.base, c.loc)


def _can_join(g: _Group, r: ir.Rule, slot: int, out: list, gi: int) -> bool:
    if len(out) - gi - 1 > MAX_DISTANCE:
        return False
    if not ends_chain(r) and g.overlaps(slot, r.matches[slot]):
        return False  # a packet in both would see the effects twice before, once after
    return all(out[i].commutes_with(r) for i in range(gi + 1, len(out)))
