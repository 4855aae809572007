"""nft's `fib ... oif` / `fib ... oifname` (route lookups, e.g. reverse-path filtering) on the
simulated host: its connected networks, its local addresses and its default route.

What the kernel does (nft_fib4_eval / nft_fib6_eval), restated for that host:
- a packet that came in by `lo` is found on `lo` (the lookup is skipped);
- IPv4 from 0.0.0.0/8 to 255.255.255.255 or 224.0.0.0/24 (DHCP, IGMP) is found on its input
  interface;
- the address looked up (the source for `saddr`, the destination for `daddr`) is routed: a
  local address, or an IPv6 subnet-router anycast one, is not found (0 / ""); an IPv6
  link-local one is only looked up on the interface the packet uses; else the interface of
  the connected network holding it, or the default route's;
- with `. iif` the result is that interface when the route uses it, else not found.
`. mark` changes nothing: the simulated host has no policy-routing rules.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Optional

from fwc.conntrack.skb import Skb

_LINK_LOCAL6 = ipaddress.ip_network("fe80::/10")
_ZERONET4 = (0, 0x00FFFFFF)
_LBCAST4 = 0xFFFFFFFF
_LOCAL_MCAST4 = (0xE0000000, 0xE00000FF)


def parse_fib(expr: str) -> Optional[tuple[str, frozenset, str]]:
    """('saddr'|'daddr', flags {'mark','iif'}, 'oif'|'oifname') of `fib ... oif[name]`."""
    words = expr.split()
    if len(words) < 3 or words[0] != "fib" or words[-1] not in ("oif", "oifname"):
        return None
    fields = [w for w in words[1:-1] if w != "."]
    addr = [f for f in fields if f in ("saddr", "daddr")]
    flags = frozenset(f for f in fields if f not in ("saddr", "daddr"))
    if len(addr) != 1 or not flags <= {"mark", "iif"}:
        return None  # (the kernel refuses `. oif` with an oif result)
    return addr[0], flags, words[-1]


def fib_reader(expr: str, host) -> Optional[Callable[[Skb], str]]:
    """A reader giving the interface name found, or "" when none is; None: not such a fib."""
    parsed = parse_fib(expr)
    if parsed is None:
        return None
    which, flags, _result = parsed

    def has_ipv6(name: Optional[str]) -> bool:
        return any(a.version == 6 for a in host.iface_addrs.get(name or "", ()))

    def anycast6(a: int) -> bool:
        for name, addrs in host.iface_addrs.items():
            if name == "lo":
                continue
            for i in addrs:
                if i.version == 6 and i.network.prefixlen < 127 and \
                        int(i.network.network_address) == a:
                    return True
            if has_ipv6(name) and a == int(_LINK_LOCAL6.network_address):
                return True
        return False

    def read(p: Skb) -> str:
        if p.iif == "lo":  # nft_fib_can_skip: a loopback packet is found where it came in
            return "lo"
        addr = p.src if which == "saddr" else p.dst
        if p.l3 == 4 and _ZERONET4[0] <= p.src <= _ZERONET4[1] and \
                (p.dst == _LBCAST4 or _LOCAL_MCAST4[0] <= p.dst <= _LOCAL_MCAST4[1]):
            return p.iif or ""
        if host.addr_type(p.l3, addr) == "LOCAL":
            return ""
        if p.l3 == 6 and anycast6(addr):
            return ""
        dev = p.iif if "iif" in flags else None
        if p.l3 == 6 and ipaddress.IPv6Address(addr) in _LINK_LOCAL6:
            on = dev or p.iif or p.oif
            found = on if has_ipv6(on) else None
        else:
            found = host.route_oif(p.l3, addr)
        if found is None:
            return ""
        if "iif" in flags:
            return found if found == dev else ""
        return found

    return read
