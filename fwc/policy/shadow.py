"""Unreachable rules: a rule every packet of which an earlier rule of the same chain already
decides.  Only single earlier rules are compared (a rule covered by the union of several is not
reported), and rate-limited rules never shadow anything (they let packets fall through)."""

from __future__ import annotations

from typing import NamedTuple, Optional

from fwc.ir import AddrRange
from fwc.policy.resolve import PRule, SvcAtom


def _interval(a) -> tuple[int, int, int]:
    if isinstance(a, AddrRange):
        return a.version, int(a.lo), int(a.hi)
    return a.version, int(a.network_address), int(a.broadcast_address)


def _addrs_cover(big: Optional[list], small: Optional[list]) -> bool:
    if big is None or small is None:
        return big is None  # no address test covers everything; a test never covers "any"
    return _ivs_cover(sorted(_interval(a) for a in big), [_interval(a) for a in small])


def _ifaces_cover(big: Optional[list], small: Optional[list]) -> bool:
    if big is None:
        return True
    if small is None:
        return False
    for s in small:
        if not any(b == s or (b.endswith("+") and s.startswith(b[:-1])) for b in big):
            return False
    return True


def _atom_covered(s: SvcAtom, big: list[SvcAtom]) -> bool:
    for b in big:
        if b.proto != s.proto or b.family != s.family:
            continue
        if b.family is not None:  # ICMP
            if b.icmp_type is None or b.icmp_type == s.icmp_type:
                return True
        elif b.ports is None:
            return True
    if s.ports is None:
        return False
    pos = s.ports.lo
    for r in sorted((b.ports for b in big if b.proto == s.proto and b.ports is not None),
                    key=lambda r: r.lo):
        if r.lo <= pos <= r.hi:
            pos = r.hi + 1
    return pos > s.ports.hi


def _services_cover(big, small) -> bool:
    if big is None:
        return True
    if small is None:
        return False
    return all(_atom_covered(s, big) for s in small)


def _set_cover(big, small) -> bool:
    return big is None or (small is not None and small <= big)


def _target_family(r: PRule) -> Optional[int]:
    return r.target.addr.version if r.target is not None and r.target.addr is not None else None


def covers(a: PRule, b: PRule) -> bool:
    if a.limit is not None:
        return False
    fa, fb = _target_family(a), _target_family(b)
    if fa is not None and fa != fb:
        return False
    return (_addrs_cover(a.saddr, b.saddr) and _addrs_cover(a.daddr, b.daddr)
            and _ifaces_cover(a.iif, b.iif) and _ifaces_cover(a.oif, b.oif)
            and _services_cover(a.services, b.services)
            and _set_cover(a.states, b.states) and _set_cover(a.status, b.status))


def _prepared(r: PRule, memo: dict) -> list:
    """What covers() compares, computed once per rule: address intervals sorted (memo: by the
    identity of the addresses, which the caller keeps alive); the last slot holds the services
    as _ServiceIndex once the rule is compared as the earlier one."""
    return [r.limit is not None, _target_family(r), _sorted_intervals(r.saddr, memo),
            _sorted_intervals(r.daddr, memo), r.iif, r.oif, r.services, r.states, r.status,
            None]


def _sorted_intervals(addrs: Optional[list], memo: dict) -> Optional[list]:
    if addrs is None:
        return None
    key = tuple(map(id, addrs))
    got = memo.get(key)
    if got is None:
        got = memo[key] = sorted(_interval(a) for a in addrs)
    return got


class _ServiceIndex:
    """A rule's services arranged for _atom_covered's questions: whole protocols, ICMP types
    (or every type) per protocol and family, port ranges per protocol sorted by start."""

    __slots__ = ("whole", "icmp_all", "icmp_types", "ports")

    def __init__(self, big: list[SvcAtom]):
        self.whole = {b.proto for b in big if b.family is None and b.ports is None}
        self.icmp_all = {(b.proto, b.family) for b in big
                         if b.family is not None and b.icmp_type is None}
        self.icmp_types = {(b.proto, b.family, b.icmp_type) for b in big
                           if b.family is not None and b.icmp_type is not None}
        ports: dict = {}
        for b in big:
            if b.ports is not None:
                ports.setdefault(b.proto, []).append(b.ports)
        self.ports = {p: sorted(rs, key=lambda r: r.lo) for p, rs in ports.items()}

    def covers(self, s: SvcAtom) -> bool:
        """_atom_covered(s, big)."""
        if s.family is not None:
            if (s.proto, s.family) in self.icmp_all or \
                    (s.proto, s.family, s.icmp_type) in self.icmp_types:
                return True
        elif s.proto in self.whole:
            return True
        if s.ports is None:
            return False
        pos = s.ports.lo
        for r in self.ports.get(s.proto, ()):
            if r.lo <= pos <= r.hi:
                pos = r.hi + 1
        return pos > s.ports.hi


def _ivs_cover(big: Optional[list], small: Optional[list]) -> bool:
    """_addrs_cover on sorted intervals."""
    if big is None:
        return True
    if small is None:
        return False
    for v, lo, hi in small:
        pos = lo
        for bv, blo, bhi in big:
            if bv == v and blo <= pos <= bhi:
                pos = bhi + 1
                if pos > hi:
                    break
        if pos <= hi:
            return False
    return True


def _covers_prepared(a: list, b: list) -> bool:
    """covers() on _prepared() lists."""
    if a[0]:
        return False
    if a[1] is not None and a[1] != b[1]:
        return False
    # (the same resolved address list gives the same interval list object)
    return ((a[3] is b[3] or _ivs_cover(a[3], b[3])) and (a[2] is b[2] or _ivs_cover(a[2], b[2]))
            and _ifaces_cover(a[4], b[4]) and _ifaces_cover(a[5], b[5])
            and _set_cover(a[7], b[7]) and _set_cover(a[8], b[8])
            and _prepared_services_cover(a, b[6]))


def _prepared_services_cover(a: list, small: Optional[list]) -> bool:
    """_services_cover(a's services, small)."""
    if a[6] is None:
        return True
    if small is None:
        return False
    index = a[9]
    if index is None:
        index = a[9] = _ServiceIndex(a[6])
    return all(index.covers(s) for s in small)


def shadowed(rules: list[PRule]) -> list[tuple[PRule, PRule]]:
    """[(unreachable rule, the first earlier rule covering it)].

    Earlier rules are indexed by their source prefixes so a 5,000-rule chain does not cost
    12.5 million comparisons.  An earlier rule can only cover a later one if one of its source
    intervals contains the lowest address of the later rule's first source value: it has no
    saddr, or an address range there (both kept in `wild`, always compared), or a prefix
    containing that address -- a supernet, looked up for each prefix length in use.  So the
    result is that of comparing every earlier rule."""
    wild = _WildIndex()  # rules without saddr or with an address range in it
    by_net: dict = {}  # (version, network, prefixlen) -> indexes of rules with that prefix
    plens: dict[int, list[int]] = {4: [], 6: []}  # prefix lengths in by_net, longest first
    memo: dict = {}
    prepared = [_prepared(r, memo) for r in rules]
    # ids of the source values -> their _SourceKeys: rules naming the same object share its
    # resolved values (kept alive in the entry, so the ids stay theirs)
    src_memo: dict = {}
    out = []
    for i, r in enumerate(rules):
        pr = prepared[i]
        sk = None
        if r.saddr is not None and not r.saddr:
            cands = range(i)  # no source address at all: anything may cover it
        else:
            cands = wild.candidates(r.services)
            if r.saddr:
                key = tuple(map(id, r.saddr))
                sk = src_memo.get(key)
                if sk is None:
                    sk = src_memo[key] = _source_keys(r.saddr)
                v, lo = sk.first
                bits = 32 if v == 4 else 128
                for plen in plens[v]:
                    hit = by_net.get((v, lo >> (bits - plen) << (bits - plen), plen))
                    if hit:
                        cands.extend(hit)
            if len(cands) > 1:  # (the first earlier rule that covers is the one reported)
                cands = sorted(set(cands))
        for c in cands:
            if _covers_prepared(prepared[c], pr):
                out.append((r, rules[c]))
                break
        if r.saddr is None or (sk is not None and sk.has_range):
            wild.add(i, r.services)
        elif sk is not None:
            for key in sk.keys:
                got = by_net.get(key)
                if got is None:
                    by_net[key] = [i]
                    v, _, plen = key
                    if plen not in plens[v]:
                        plens[v].append(plen)
                        plens[v].sort(reverse=True)
                else:
                    got.append(i)
    return out


class _WildIndex:
    """The rules no source prefix indexes, by what their services can cover: a rule covers a
    later one only if it covers the later rule's first service atom, which needs every
    service, that protocol whole, that ICMP type (or all), or a port range holding the atom's
    lowest port.  (A policy keyed on services, `allow tcp/N` x 5,000, was quadratic.)"""

    def __init__(self):
        self.any: list[int] = []  # rules for every service
        self.by_key: dict = {}  # key -> rule indexes
        self.ranged: dict[int, list[int]] = {}  # proto -> rules with a multi-port range

    def add(self, i: int, services) -> None:
        if services is None:
            self.any.append(i)
            return
        keys = set()
        for b in services:
            if b.family is not None:
                keys.add(("icmp", b.proto, b.family, b.icmp_type))
            elif b.ports is None:
                keys.add(("whole", b.proto))
            elif b.ports.lo == b.ports.hi:
                keys.add(("port", b.proto, b.ports.lo))
            else:
                keys.add(("ranged", b.proto))
        for k in keys:
            if k[0] == "ranged":
                self.ranged.setdefault(k[1], []).append(i)
            else:
                self.by_key.setdefault(k, []).append(i)

    def candidates(self, services) -> list[int]:
        """Indexes (unsorted, maybe repeated) of the rules that may cover `services`."""
        out = list(self.any)
        if services is None or not services:
            return out
        s = services[0]
        if s.family is not None:
            for t in (None, s.icmp_type):
                out += self.by_key.get(("icmp", s.proto, s.family, t), ())
            return out
        out += self.by_key.get(("whole", s.proto), ())
        if s.ports is not None:
            out += self.by_key.get(("port", s.proto, s.ports.lo), ())
            out += self.ranged.get(s.proto, ())
        return out


class _SourceKeys(NamedTuple):
    values: list  # the source list itself (keeps the ids of its values theirs)
    first: tuple  # (version, lowest address) of its first value
    keys: tuple  # the by_net keys of its values (none when one is a range)
    has_range: bool


def _source_keys(saddr: list) -> _SourceKeys:
    v, lo, _ = _interval(saddr[0])
    has_range = any(isinstance(a, AddrRange) for a in saddr)
    keys = () if has_range else tuple((a.version, int(a.network_address), a.prefixlen)
                                      for a in saddr)
    return _SourceKeys(saddr, (v, lo), keys, has_range)
