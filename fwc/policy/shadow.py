"""Unreachable rules: a rule every packet of which an earlier rule of the same chain already
decides.  Only single earlier rules are compared (a rule covered by the union of several is not
reported), and rate-limited rules never shadow anything (they let packets fall through)."""

from __future__ import annotations

from typing import Optional

from fwc.ir import AddrRange
from fwc.policy.resolve import PRule, SvcAtom


def _interval(a) -> tuple[int, int, int]:
    if isinstance(a, AddrRange):
        return a.version, int(a.lo), int(a.hi)
    return a.version, int(a.network_address), int(a.broadcast_address)


def _addrs_cover(big: Optional[list], small: Optional[list]) -> bool:
    if big is None:
        return True
    if small is None:
        return False
    ivs = sorted(_interval(a) for a in big)
    for v, lo, hi in (_interval(a) for a in small):
        pos = lo
        for bv, blo, bhi in ivs:
            if bv == v and blo <= pos <= bhi:
                pos = bhi + 1
                if pos > hi:
                    break
        if pos <= hi:
            return False
    return True


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


def shadowed(rules: list[PRule]) -> list[tuple[PRule, PRule]]:
    """[(unreachable rule, the earlier rule covering it)].

    Earlier rules are indexed by their first source address's prefix so a 5,000-rule chain
    does not cost 12.5 million comparisons: a rule can only be covered by an earlier rule whose
    saddr is absent, an address range, or a supernet of the later rule's first saddr."""
    wild: list[PRule] = []
    by_net: dict = {}
    out = []
    order = {id(r): i for i, r in enumerate(rules)}
    for r in rules:
        cands = list(wild)
        if r.saddr:
            first = r.saddr[0]
            if not isinstance(first, AddrRange):
                bits = first.max_prefixlen
                addr = int(first.network_address)
                for plen in range(first.prefixlen, -1, -1):
                    masked = addr & (((1 << plen) - 1) << (bits - plen))
                    cands.extend(by_net.get((first.version, masked, plen), ()))
        cands.sort(key=lambda c: order[id(c)])
        for c in cands:
            if c is not r and covers(c, r):
                out.append((r, c))
                break
        if r.saddr is None or any(isinstance(a, AddrRange) for a in r.saddr):
            wild.append(r)
        else:
            for a in r.saddr:
                key = (a.version, int(a.network_address), a.prefixlen)
                by_net.setdefault(key, []).append(r)
    return out
