"""Lookups: rules that differ only in the values of some key fields become one rule with one
lookup (nft output only).  The rules need not be adjacent: a rule joins an earlier group when it
commutes (analysis.commute, the proof the sets pass uses) with every rule in between, so it
may first move up to the group.

- Same statements and verdict: one set lookup, concatenated when several fields differ:
  `ip saddr 10.0.0.1 ip daddr 10.0.0.2 accept; ip saddr 10.0.0.3 ip daddr 10.0.0.4 accept`
  -> `ip saddr . ip daddr { 10.0.0.1 . 10.0.0.2, 10.0.0.3 . 10.0.0.4 } accept`; the key order
  is the order of the fields in the group's first rule, a port's protocol just before it.
- Different verdicts, no statements: one verdict map:
  `iifname "eth0" jump A; iifname "eth1" jump B` -> `iifname vmap { "eth0" : jump A, ... }`,
  `tcp dport 22 accept; udp dport 53 drop` -> `meta l4proto . th dport vmap { ... }`.

Why the meaning is kept: the members' lookup elements are pairwise disjoint and their other
matches are equal, so a packet matches at most one member, and the merged rule does exactly what
that member did.  The rules in between the first and the matching member did not match, and no
member after it can match either, provided the member's effect (statements, a jump into another
chain) cannot change the differing fields; a group whose rules go on after matching (statements
only, or a jump) therefore only merges on fields nothing in it writes.  Nothing stateful merges.
Ports stand for their protocol plus a transport-header port (`tcp dport 22` is
`meta l4proto tcp` and `th dport 22`), so rules on different protocols can share one lookup.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Optional

from fwc import ir
from fwc.passes.analysis import commute, ends_chain, is_stateful
from fwc.passes.keys import box, boxes_overlap, key_of
from fwc.passes.notes import Explain, Notes
from fwc.passes.sets import MAX_DISTANCE

L4 = "l4"  # the protocol key; written `ip protocol` in ip tables, `meta l4proto` elsewhere
# keys that may take part in a concatenation (nft concatenates fixed-size fields; ct state is a
# bitmask and stays a single-field lookup)
CONCAT_OK = {"iifname", "oifname", "ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr", L4,
             "th sport", "th dport", "icmp type", "icmpv6 type", "meta mark"}
MUTABLE = {"meta mark", "ct mark", "ct state"}
VMAP_VERDICTS = (ir.Accept, ir.Drop, ir.Return, ir.Jump, ir.Goto)
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}
MAX_ELEMENTS = 100000
# what a statement may write; anything not listed is taken to write every field
WRITES = {ir.Log: (), ir.NfLog: (), ir.Counter: (), ir.Audit: ()}


class _Member:
    __slots__ = ("rule", "keys", "rest")

    def __init__(self, rule: ir.Rule, keys: dict, rest: tuple):
        self.rule, self.keys, self.rest = rule, keys, rest


def decompose(r: ir.Rule, family: str) -> Optional[_Member]:
    """The rule as its key fields (expr -> frozenset of values) and its other matches."""
    if is_stateful(r):
        return None
    keys: dict = {}
    rest = []

    def put(expr, values) -> bool:
        values = frozenset(values)
        if expr in keys:
            if expr != L4:
                return False  # two tests of one field: leave such a rule alone
            values &= keys[expr]
        keys[expr] = values
        return True

    for m in r.matches:
        if isinstance(m, ir.Port) and not m.negate and m.field in ("sport", "dport") and \
                m.proto in PROTO_NAMES.values():
            pn = ir.L4_PROTOS[m.proto]
            k = key_of(m, family)
            if not (put(L4, {pn}) and put(f"th {m.field}", k.values)):
                return None
            continue
        if isinstance(m, ir.Proto) and not m.negate:
            if not put(L4, m.protos):
                return None
            continue
        k = key_of(m, family)
        if k is None or k.expr in ("ip protocol", "meta l4proto"):
            rest.append(m)
        elif not put(k.expr, k.values):
            return None
    if not keys.get(L4, True):
        return None  # contradictory protocols: leave it to other passes
    return _Member(r, _l4_with_ports(keys), tuple(rest))


def _l4_with_ports(keys: dict) -> dict:
    """The keys in the rule's order, but the protocol just before the first port: the order
    in which `ip daddr X tcp dport 22` (and `-d X -p tcp --dport 22`) reads."""
    order = [e for e in keys if e != L4]
    first_port = next((i for i, e in enumerate(order) if e.startswith("th ")), None)
    if L4 not in keys or first_port is None:
        return keys
    order.insert(first_port, L4)
    return {e: keys[e] for e in order}


def _writes(r: ir.Rule) -> Optional[set]:
    """Fields a matching rule may change before later rules run (None: anything)."""
    if isinstance(r.verdict, (ir.Jump, ir.VerdictMap)) or \
            r.verdict not in (None, ir.Continue()) and not ends_chain(r):
        return None
    out: set = set()
    for s in r.statements:
        if type(s) in WRITES:
            continue
        if isinstance(s, ir.SetMark):
            out.add("meta mark" if s.kind == "meta" else "ct mark")
        elif isinstance(s, ir.CopyMark):
            out.add("meta mark" if s.to == "meta" else "ct mark")
        else:
            return None
    return out


class _Elements:
    """The group's elements over `differing`, with what the disjointness test needs kept as
    members join: the set of point elements (a lookup per new element) and every element's
    boxes (the general test compares a new element with each).  Each join costs what the new
    member brings, not the whole group again."""

    __slots__ = ("per_member", "count", "points", "boxes", "all_points", "groups", "ends",
                 "keys", "indexed")

    def __init__(self):
        self.per_member: list = []  # per member: list of element tuples
        self.count = 0
        self.points: set = set()
        self.boxes: list = []
        self.all_points = True
        # the general test's index: elements grouped by their first value's box, the groups'
        # extents sorted and disjoint (prefix . port lookups); off once two first values
        # overlap without being equal, or one is a name
        self.groups: dict = {}  # first box -> boxes of the elements with it
        self.ends: list = []  # sorted (start, end) extents of the groups
        self.keys: list = []  # the first box of each extent, in the same order
        self.indexed = True

    @staticmethod
    def _extent(b: tuple):
        if b[0] == "s":
            return None
        v = b[0] if len(b) == 3 else 0
        return (v, b[-2]), (v, b[-1])

    def _candidates(self, bs: list):
        """The boxes of earlier elements that may overlap `bs` (all of them without index)."""
        if not self.indexed:
            return self.boxes
        ext = self._extent(bs[0])
        if ext is None:
            return self.boxes
        lo, hi = ext
        k = bisect.bisect_right(self.ends, (hi, (float("inf"),)))
        out = []
        while k > 0 and self.ends[k - 1][1] >= lo:
            k -= 1
            out.extend(self.groups[self.keys[k]])
        return out

    def _index(self, bs: list) -> None:
        if not self.indexed:
            return
        first = bs[0]
        got = self.groups.get(first)
        if got is not None:
            got.append(bs)
            return
        ext = self._extent(first)
        if ext is None:
            self.indexed = False
            return
        k = bisect.bisect_left(self.ends, (ext[0], (float("-inf"),)))
        before = self.ends[k - 1] if k else None
        after = self.ends[k] if k < len(self.ends) else None
        if (before is not None and before[1] >= ext[0]) or \
                (after is not None and after[0] <= ext[1]):
            self.indexed = False  # (overlapping first values: scan everything from now on)
            return
        self.ends.insert(k, (ext[0], ext[1]))
        self.keys.insert(k, first)
        self.groups[first] = [bs]

    def try_add(self, new: list) -> bool:
        """Add one member's elements when disjoint from every element so far (and from one
        another); unchanged and False otherwise."""
        boxes = [[box(v) for v in e] for e in new]
        pts = all(b[0] == "s" or b[-2] == b[-1] for bs in boxes for b in bs)
        if pts and self.all_points:
            canon = [tuple(b if b[0] == "s" else b[:-1] for b in bs) for bs in boxes]
            if len(set(canon)) != len(canon) or any(c in self.points for c in canon):
                return False
            self.points.update(canon)
        else:
            for i, bs in enumerate(boxes):
                for other in itertools.chain(self._candidates(bs), boxes[i + 1:]):
                    if all(boxes_overlap(a, b) for a, b in zip(bs, other)):
                        return False
            self.all_points = False
        for bs in boxes:
            self._index(bs)
        self.boxes.extend(boxes)
        self.per_member.append(new)
        self.count += len(new)
        return True


class _Group:
    def __init__(self, m: _Member):
        self.members = [m]
        self.moved = 0  # members that moved up past other rules to join
        self.differing: tuple = ()
        self._elems = _Elements()

    @property
    def elements(self) -> list:
        """Per member: the list of its element tuples over `differing`."""
        return self._elems.per_member

    def _elements_of(self, m: _Member, differing: tuple) -> list:
        return list(itertools.product(*(_sorted_values(m.keys[e]) for e in differing)))

    def try_add(self, m: _Member) -> bool:
        t = self.members[0]
        if m.rest != t.rest or set(m.keys) != set(t.keys):
            return False
        same_effect = m.rule.statements == t.rule.statements and m.rule.verdict == t.rule.verdict
        if not same_effect:
            # a verdict map: every member without statements and with a simple verdict
            if any(x.rule.statements or not isinstance(x.rule.verdict, VMAP_VERDICTS)
                   for x in (m, *self.members)):
                return False
        # in the first rule's field order (keys keep decompose's order of the matches)
        differing = tuple(e for e in t.keys
                          if e in self.differing or m.keys[e] != t.keys[e])
        if not differing:
            return False  # a duplicate rule: the dead-rule pass's business
        if len(differing) > 1 and not set(differing) <= CONCAT_OK:
            return False
        # (the old members were checked for the old differing fields already)
        if not self._effects_keep_keys([m] if differing == self.differing else
                                       self.members + [m], differing):
            return False
        new = self._elements_of(m, differing)
        if differing != self.differing:  # (a wider key: the elements are built again)
            elems = _Elements()
            for x in self.members:
                if not elems.try_add(self._elements_of(x, differing)):
                    return False
        else:
            elems = self._elems
        if elems.count + len(new) > MAX_ELEMENTS or not elems.try_add(new):
            return False
        self.members.append(m)
        self.differing, self._elems = differing, elems
        return True

    @staticmethod
    def _effects_keep_keys(members, differing) -> bool:
        """A member that matches and lets evaluation go on (statements, a jump) must not be
        able to change the differing fields: a later member could then match too."""
        for x in members:
            if ends_chain(x.rule):
                continue  # nothing after it in this chain runs
            written = _writes(x.rule)
            if written is None:
                if set(differing) & MUTABLE:
                    return False
            elif written & set(differing):
                return False
        return True


def _sorted_values(values: frozenset) -> list:
    return sorted(values, key=lambda v: (str(type(v)), box(v)))


# ----------------------------------------------------------------------------- rebuilding


def _key_text(expr: str, family: str, keys: dict, differing: tuple) -> str:
    if expr == L4:
        return "ip protocol" if family == "ip" else "meta l4proto"
    if expr.startswith("th ") and L4 not in differing and len(keys.get(L4, ())) == 1 and \
            next(iter(keys[L4])) in PROTO_NAMES:
        (p,) = keys[L4]
        return f"{PROTO_NAMES[p]} {expr[3:]}"
    return expr


def _value(expr: str, v):
    if isinstance(v, ir.Range) and v.lo == v.hi:
        return v.lo
    return v


def _common_matches(t: _Member, differing: tuple, family: str) -> list:
    """The fields all members share, as IR matches."""
    out = []
    common = [e for e in t.keys if e not in differing]
    l4 = t.keys.get(L4)
    one_proto = L4 not in differing and l4 is not None and len(l4) == 1
    for e in common:
        vals = _sorted_values(t.keys[e])
        if e == L4:
            ports_named = any(x.startswith("th ") for x in t.keys) and one_proto and \
                next(iter(l4)) in PROTO_NAMES
            if not ports_named:
                out.append(ir.Proto(frozenset(vals)))
            continue
        if e.startswith("th "):
            if one_proto and next(iter(l4)) in PROTO_NAMES:
                ranges = tuple(v if isinstance(v, ir.Range) else ir.Range(v, v) for v in vals)
                out.append(ir.Port(PROTO_NAMES[next(iter(l4))], e[3:], ranges))
            else:
                out.append(ir.SetMatch((e,), None, tuple((_value(e, v),) for v in vals)))
            continue
        out.append(_match_of(e, vals))
    return out


def _match_of(expr: str, vals: list) -> ir.Match:
    """A single-field IR match for a common key (what key_of read it from)."""
    if expr in ("iifname", "oifname"):
        return ir.Interface(expr, vals[0])
    if expr.split()[0] in ("ip", "ip6") and expr.split()[1] in ("saddr", "daddr"):
        return ir.Address(expr.split()[1], tuple(vals))
    if expr in ("icmp type", "icmpv6 type"):
        return ir.Icmp("ip" if expr == "icmp type" else "ip6", vals[0])
    if expr in ("meta mark", "ct mark"):
        return ir.Mark(expr.split()[0], vals[0])
    if expr == "ct state":
        return ir.CtState(frozenset(v.upper() for v in vals))
    raise AssertionError(expr)


def _rebuild(g: _Group, family: str) -> ir.Rule:
    t = g.members[0]
    keys_text = tuple(_key_text(e, family, t.keys, g.differing) for e in g.differing)
    matches = list(t.rest) + _common_matches(t, g.differing, family)
    first = t.rule
    if all(m.rule.verdict == first.verdict and m.rule.statements == first.statements
           for m in g.members):
        elems = tuple(tuple(_value(e, v) for e, v in zip(g.differing, el))
                      for per in g.elements for el in per)
        matches.append(ir.SetMatch(keys_text, None, elems))
        return ir.Rule(tuple(matches), first.statements, first.verdict, None, first.loc)
    vm = ir.VerdictMap(keys_text, None, tuple(
        (tuple(_value(e, v) for e, v in zip(g.differing, el)), m.rule.verdict)
        for m, per in zip(g.members, g.elements) for el in per))
    return ir.Rule(tuple(matches), (), vm, None, first.loc)


# ----------------------------------------------------------------------------- the pass


def merge_lookups(rs: ir.Ruleset, explain: Explain = None) -> ir.Ruleset:
    notes = Notes("lookups", explain)
    tables = []
    for t in rs.tables:
        chains = tuple(_merge_chain(c, t.family, notes) for c in t.chains)
        tables.append(ir.Table(t.family, t.name, chains, t.sets, t.loc, t.counters, t.limits))
    return ir.Ruleset(tuple(tables))


def _signature(m: _Member):
    return m.rest, frozenset(m.keys)  # what try_add needs equal


def _can_move(out: list, gi: int, r: ir.Rule) -> bool:
    """`r` may move up to the group at out[gi]: it commutes with every rule after it."""
    if len(out) - gi - 1 > MAX_DISTANCE:
        return False  # each item holds a rule at least (bounds the cost, as in sets)
    between = [x for item in out[gi + 1:]
               for x in ([y.rule for y in item.members] if isinstance(item, _Group) else [item])]
    return len(between) <= MAX_DISTANCE and all(commute(x, r) for x in between)


def _merge_chain(c: ir.Chain, family: str, notes: Notes) -> ir.Chain:
    out: list = []  # ir.Rule or _Group
    newest: dict = {}  # signature -> index in out of the newest group with it
    for r in c.rules:
        m = decompose(r, family)
        if m is None:
            out.append(r)
            continue
        sig = _signature(m)
        gi = newest.get(sig)
        if gi is not None:
            g = out[gi]
            if (gi == len(out) - 1 or _can_move(out, gi, r)) and g.try_add(m):
                g.moved += gi != len(out) - 1
                continue
        newest[sig] = len(out)
        out.append(_Group(m))
    if all(not isinstance(x, _Group) or len(x.members) == 1 for x in out):
        return c
    rules = []
    for x in out:
        if not isinstance(x, _Group):
            rules.append(x)
        elif len(x.members) == 1:
            rules.append(x.members[0].rule)
        else:
            r = _rebuild(x, family)
            kind = "verdict map" if isinstance(r.verdict, ir.VerdictMap) else "set lookup"
            keys = " . ".join(r.verdict.keys if isinstance(r.verdict, ir.VerdictMap)
                              else r.matches[-1].keys)
            moved = f" ({x.moved} of them moved up past commuting rules)" if x.moved else ""
            notes.info(f"chain {c.name}: {len(x.members)} rules merged into one {kind} on "
                       f"{keys}{moved}", r.loc)
            rules.append(r)
    return ir.Chain(c.name, tuple(rules), c.base, c.loc)


__all__ = ["merge_lookups", "decompose"]
