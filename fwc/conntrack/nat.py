"""NAT bindings on conntrack entries, and rewriting packets from them.

A binding is set up once per connection and manip type (DST in prerouting/output, SRC in
input/postrouting): the entry's reply tuple is changed so that replies are recognised and
un-NATed.  As in the kernel (nf_nat_packet / nf_nat_manip_pkt), a packet is rewritten towards
the inverse of the *other* direction's tuple.
"""

from __future__ import annotations

import sys
from typing import Optional

from fwc.conntrack.jhash import jhash2
from fwc.conntrack.skb import ICMP_PROTOS, PORT_PROTOS, Skb
from fwc.conntrack.table import ConntrackTable, Entry, invert
from fwc.ir import Loc

MANIP_OF_HOOK = {"prerouting": "DST", "output": "DST", "input": "SRC", "postrouting": "SRC"}
STATUS_OF_MANIP = {"SRC": "SNAT", "DST": "DNAT"}


def _with(t: tuple, manip: str, addr: Optional[int], port: Optional[int]) -> tuple:
    l3, proto, src, dst, sp, dp = t
    if manip == "SRC":
        return (l3, proto, src if addr is None else addr, dst, sp if port is None else port, dp)
    return (l3, proto, src, dst if addr is None else addr, sp, dp if port is None else port)


def _default_port_range(port: int) -> tuple[int, int]:
    # the kernel keeps a clashing port within its class: <512, <1024, or unprivileged
    if port < 512:
        return (1, 511)
    if port < 1024:
        return (600, 1023)
    return (1024, 65535)


def setup_binding(table: ConntrackTable, entry: Entry, manip: str, addr, ports: Optional[tuple[int, int]],
                  flags: frozenset = frozenset(), loc: Optional[Loc] = None) -> str:
    """Bind `entry` for `manip` as nf_nat_core's get_unique_tuple does.  `addr`: None keeps the
    address, an int or an inclusive (lo, hi) range of them (one picked by the kernel's hash of
    the addresses); `ports`: None keeps the port unless another connection has the tuple, else
    an inclusive range; `flags`: random fully-random persistent.  When the kernel would pick
    the port at random, the entry's port is unknown (see Entry.random_port).  -> a description"""
    current = invert(entry.tuples[1])
    proto = current[1]
    icmp = proto in ICMP_PROTOS
    have_ports = proto in PORT_PROTOS or icmp
    a_idx = 2 if manip == "SRC" else 3
    p_idx = 4 if manip == "SRC" or icmp else 5  # the ICMP id plays the port either way
    random_all = bool(flags & {"random", "fully-random"})
    lo_a, hi_a = (None, None) if addr is None else (addr, addr) if isinstance(addr, int) else addr
    specified = ports is not None and have_ports

    def in_range(t) -> bool:  # nf_in_range
        return (lo_a is None or lo_a <= t[a_idx] <= hi_a) and \
            (not specified or ports[0] <= t[p_idx] <= ports[1])

    def used(t) -> bool:  # nf_nat_used_tuple
        return table.taken(invert(t), entry.zone, entry)

    chosen = None
    if manip == "SRC" and not random_all:
        if in_range(current):
            chosen = current if not used(current) else None
        else:  # find_appropriate_src: the mapping an earlier connection of this source got
            t = table.source_mapping(current, entry, in_range)
            chosen = t if t is not None and not used(t) else None
    if chosen is None:
        t = current
        if lo_a is not None:
            t = _with(t, manip, _best_ip(current, lo_a, hi_a, "persistent" in flags, entry.zone),
                      None)
        if not random_all and (ports[0] <= t[p_idx] <= ports[1] and (ports[0] == ports[1] or
                                                                     not used(t))
                               if specified else not used(t)):
            chosen = t
        else:
            chosen = _unique_port(table, entry, t, manip, ports if specified else None,
                                  random_all, icmp, have_ports, p_idx, loc)
    entry.nat_done.add(manip)
    if chosen != current:
        entry.tuples[1] = invert(chosen)
        entry.status.add(STATUS_OF_MANIP[manip])
    return "binding " + _describe(manip, chosen)


def _best_ip(t: tuple, lo: int, hi: int, persistent: bool, zone: int) -> int:
    """find_best_ips_proto: an address of lo..hi from the jhash of the source (and, unless
    persistent, the destination), so one client keeps one address."""
    if lo == hi:
        return lo
    l3 = t[0]
    width = 4 if l3 == 4 else 16
    src, dst = (_le_words(x.to_bytes(width, "big")) for x in (t[2], t[3]))
    last = 0 if l3 == 4 else 3
    j = jhash2(src, 0 if persistent else dst[last] ^ zone)
    lo_w = [int.from_bytes(lo.to_bytes(width, "big")[4 * i:4 * i + 4], "big") for i in range(last + 1)]
    hi_w = [int.from_bytes(hi.to_bytes(width, "big")[4 * i:4 * i + 4], "big") for i in range(last + 1)]
    out, full = [], False
    for i in range(last + 1):
        minip, dist = (0, 0xFFFFFFFF) if full else (lo_w[i], (hi_w[i] - lo_w[i] + 1) & 0xFFFFFFFF)
        w = (minip + ((j * dist) >> 32)) & 0xFFFFFFFF
        out.append(w)
        if w != hi_w[i]:
            full = True
        if not persistent:
            j ^= dst[i]
    return int.from_bytes(b"".join(w.to_bytes(4, "big") for w in out), "big")


def _le_words(b: bytes) -> list[int]:
    # the tuple's address as the u32 words jhash2 reads on a little-endian host (16 bytes:
    # an IPv4 address fills the first word, the rest of union nf_inet_addr is zero)
    b = b.ljust(16, b"\0")
    return [int.from_bytes(b[i:i + 4], sys.byteorder) for i in range(0, 16, 4)]


def _unique_port(table, entry, t, manip, ports, random_all, icmp, have_ports, p_idx, loc):
    """nf_nat_l4proto_unique_tuple: a free port (ICMP id) of the range.  The kernel starts its
    search at a random offset for a source rewrite or with random/fully-random, so the port is
    then unknown here; a destination rewrite searches from the range's start."""
    if not have_ports:
        return t
    if ports is None:
        if manip == "DST" and not icmp:
            return t  # "if it's dst rewrite, can't change port" (a clash is confirm's business)
        ports = (0, 65535) if icmp else _default_port_range(t[p_idx])
    lo, hi = ports

    def at(port):
        return t[:p_idx] + (port,) + t[p_idx + 1:]
    if lo == hi:
        return at(lo)
    if random_all or manip != "DST":
        entry.random_port = (lo, hi, loc, "random" if random_all else "clash")
        table.random_bound.append(entry)
        return at(table.unknown_port())
    for port in range(lo, hi + 1):
        if not table.taken(invert(at(port)), entry.zone, entry):
            return at(port)
    raise _NoFreeTuple()


def _describe(manip: str, t: tuple) -> str:
    from fwc.conntrack.skb import addr_str
    l3, proto, src, dst, sp, dp = t
    if manip == "SRC":
        a, p = src, sp
    else:
        a, p = dst, dp
    text = addr_str(l3, a)
    if proto in PORT_PROTOS:
        text = (f"[{text}]" if l3 == 6 else text) + (f":{p}" if p >= 0 else
                                                    ", a port the kernel picks at random")
    return f"{'source' if manip == 'SRC' else 'destination'} -> {text}"


class _NoFreeTuple(Exception):
    pass


NoFreeTuple = _NoFreeTuple


def manip_packet(skb: Skb, manip: str) -> Optional[str]:
    """Rewrite `skb` from its entry's binding, if that binding changes this direction."""
    entry = skb.ct
    if entry is None:
        return None
    status = STATUS_OF_MANIP[manip]
    if skb.ct_dir == 1:
        status = "DNAT" if status == "SNAT" else "SNAT"
    if status not in entry.status:
        return None
    target = invert(entry.tuples[1 - skb.ct_dir])
    error = skb.proto in ICMP_PROTOS and skb.ct_state == "RELATED" and skb.quote is not None
    before = (skb.src, skb.dst, skb.sport, skb.dport)
    if manip == "SRC":
        skb.src = target[2]
        if skb.sport is not None and not error:
            skb.sport = target[4]
        if skb.proto in ICMP_PROTOS and not error:
            skb.icmp_id = target[4]
    else:
        skb.dst = target[3]
        if skb.dport is not None and not error:
            skb.dport = target[5]
        if skb.proto in ICMP_PROTOS and not error:
            skb.icmp_id = target[4]
    if before == (skb.src, skb.dst, skb.sport, skb.dport):
        return None
    return f"nat: {_describe(manip, skb.tuple())}"
