"""The simulator's mutable view of one packet in flight (the kernel's sk_buff, much reduced).

Addresses are kept as ints (with `l3` giving the family) so that matching and conntrack lookups
are plain integer and tuple operations.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from fwc.packet import Packet

TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
                 "ECE": 0x40, "CWR": 0x80}
PORT_PROTOS = frozenset((6, 17, 132, 33, 136))  # protocols with 16-bit source/destination ports
ICMP_PROTOS = frozenset((1, 58))
L4_HEADER_LEN = {6: 20, 17: 8, 1: 8, 58: 8, 132: 12, 33: 12, 136: 8}


def flag_bits(names) -> int:
    bits = 0
    for n in names:
        bits |= TCP_FLAG_BITS[n]
    return bits


def addr_str(l3: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if l3 == 4 else ipaddress.IPv6Address(value))


class Skb:
    """One packet as it crosses the hooks; NAT rewrites src/dst/sport/dport in place."""

    __slots__ = ("dir", "l3", "family", "proto", "src", "dst", "sport", "dport", "flags",
                 "payload", "icmp_type", "icmp_code", "icmp_id", "iif", "oif", "mark", "ttl",
                 "tos", "length", "ct", "ct_state", "ct_dir", "notrack", "tmpl_helper",
                 "tmpl_zone", "tmpl", "quote", "notes", "now_ns", "own")

    def __init__(self, p: Packet, ttl: int = 64):
        self.dir = p.dir
        self.l3 = p.l3
        self.family = "ip" if p.l3 == 4 else "ip6"
        self.proto = p.proto
        self.src = int(p.src)
        self.dst = int(p.dst)
        self.sport = p.sport if p.proto in PORT_PROTOS else None
        self.dport = p.dport if p.proto in PORT_PROTOS else None
        self.flags = flag_bits(p.flags) if p.proto == 6 else 0
        self.payload = p.payload
        self.icmp_type = p.icmp_type if p.proto in ICMP_PROTOS else None
        self.icmp_code = p.icmp_code
        self.icmp_id = p.icmp_id
        self.iif = p.iif
        self.oif = p.oif
        self.mark = 0
        self.own: frozenset = frozenset()  # the case's own addresses (Simulator.own)
        self.ttl = ttl
        self.tos = 0
        self.length = (20 if p.l3 == 4 else 40) + L4_HEADER_LEN.get(p.proto, 0) + len(p.payload)
        self.ct = None  # conntrack Entry, once looked up
        self.ct_state: Optional[str] = None  # NEW ESTABLISHED RELATED INVALID UNTRACKED
        self.ct_dir = 0  # 0 original, 1 reply
        self.notrack = False
        self.tmpl_helper: Optional[str] = None  # CT --helper seen before conntrack ran
        self.tmpl_zone = 0
        self.tmpl = False  # a CT target (or nft notrack / ct zone set) already acted
        self.quote = None  # inner tuple of an ICMP error (l3, proto, src, dst, sp, dp)
        self.notes: list = []
        self.now_ns = 0  # the wall clock (UTC, ns) while the packet passes; set by the engine

    def tuple(self) -> tuple:
        """The conntrack tuple of this packet as it is now: (l3, proto, src, dst, sport, dport).
        ICMP uses (id, type) as the two 'ports'; protocols without ports use (0, 0)."""
        if self.proto in PORT_PROTOS:
            return (self.l3, self.proto, self.src, self.dst, self.sport, self.dport)
        if self.proto in ICMP_PROTOS:
            return (self.l3, self.proto, self.src, self.dst, self.icmp_id or 0, self.icmp_type)
        return (self.l3, self.proto, self.src, self.dst, 0, 0)

    def describe(self) -> str:
        s, d = addr_str(self.l3, self.src), addr_str(self.l3, self.dst)
        if self.l3 == 6:
            s, d = f"[{s}]", f"[{d}]"
        if self.sport is not None:
            return f"{self.dir} proto {self.proto} {s}:{self.sport} > {d}:{self.dport}"
        if self.icmp_type is not None:
            return f"{self.dir} icmp {s} > {d} type {self.icmp_type} code {self.icmp_code}"
        return f"{self.dir} proto {self.proto} {s} > {d}"
