"""Generated packet cases biased towards what a ruleset matches on.

Cases are built from the addresses, ports, protocols and interfaces the rules mention (and values
just outside them), in every direction, as single NEW packets and as connections whose setup
makes the probe ESTABLISHED, RELATED (ICMP errors) or INVALID.  The address plan matches the
kernel harness: the first interface routes 192.0.2.0/24, 198.51.100.0/24 and the default route,
the second 203.0.113.0/24 (and the IPv6 equivalents).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Optional

from fwc import ir
from fwc.packet import DEFAULT_ADDRS, Case, packet_from_dict

_PLAN = {
    0: [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "2001:db8:f::/64",
                                            "2001:db8:a::/64")],
    1: [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "2001:db8:b::/64")],
}
_LOCAL = {4: "192.0.2.1", 6: "2001:db8:f::1"}
# (family, destination leaves by the first interface) -> a source on the other side
_OTHER_SIDE = {(4, True): "203.0.113.20", (4, False): "198.51.100.10",
               (6, True): "2001:db8:b::20", (6, False): "2001:db8:a::10"}


class _Values:
    """What the ruleset mentions, per family."""

    def __init__(self, rs: ir.Ruleset):
        self.addrs: dict[int, set] = {4: set(), 6: set()}
        self.ports: set[int] = {22, 25, 53, 80, 123, 443}
        self.icmp: dict[int, set] = {4: {0, 3, 8, 11}, 6: {1, 128, 129, 135}}
        self.families: set[int] = set()
        self.protos: set[int] = {6, 17}
        self.hooks: set[str] = set()
        for t in rs.tables:
            if t.family in ("ip", "inet"):
                self.families.add(4)
            if t.family in ("ip6", "inet"):
                self.families.add(6)
            for c in t.chains:
                if c.base is not None and (c.rules or c.base.policy == "drop"):
                    self.hooks.add(c.base.hook)
                for r in c.rules:
                    for m in r.matches:
                        self._take(m)

    def _take(self, m) -> None:
        if isinstance(m, (ir.Address, ir.CtAddress)):
            for v in m.values:
                self._addr(v)
        elif isinstance(m, ir.Port):
            for r in m.ranges:
                self.ports.update(p for p in (r.lo, r.hi, r.lo - 1, r.hi + 1) if 0 < p < 65536)
        elif isinstance(m, ir.Proto):
            self.protos.update(p for p in m.protos if p in (1, 6, 17, 58))
        elif isinstance(m, ir.Icmp) and m.type is not None:
            self.icmp[4 if m.family == "ip" else 6].add(m.type)

    def _addr(self, v) -> None:
        if isinstance(v, ir.AddrRange):
            self.addrs[v.version].update({v.lo, v.hi})
            return
        net = v
        self.addrs[net.version].add(net.network_address if net.prefixlen == net.max_prefixlen
                                    else net.network_address + 1)
        if net.prefixlen < net.max_prefixlen:
            self.addrs[net.version].add(net.broadcast_address - 1)
        if net.prefixlen > 0:  # just outside
            outside = int(net.broadcast_address) + 1
            if outside < 2 ** net.max_prefixlen:
                self.addrs[net.version].add(ipaddress.ip_address(outside) if net.version == 4
                                            else ipaddress.IPv6Address(outside))


def _route(addr, ifaces) -> str:
    for idx, nets in _PLAN.items():
        if any(addr in n for n in nets if n.version == addr.version):
            return ifaces[idx]
    return ifaces[0]


def _usable(a) -> bool:
    return not (a.is_multicast or a.is_loopback or a.is_unspecified or a.is_link_local
                or (a.version == 4 and int(a) >> 24 in (0, 127, 255)) or
                (a.version == 4 and a >= ipaddress.ip_address("224.0.0.0")))


def generate_cases(rs: ir.Ruleset, n: int = 200, seed: int = 0,
                   ifaces: tuple[str, str] = ("eth0", "eth1")) -> list[Case]:
    """`n` cases for `rs` (deterministic for a seed)."""
    vals = _Values(rs)
    rnd = random.Random(seed)
    fams = sorted(vals.families) or [4]
    dirs = [d for d, hooks in (("in", {"input", "prerouting"}), ("out", {"output", "postrouting"}),
                               ("fwd", {"forward", "prerouting", "postrouting"}))
            if hooks & vals.hooks] or ["in", "out", "fwd"]
    cases = []
    roles: dict = {ipaddress.ip_address(a): 'local' for a in _LOCAL.values()}
    for i in range(n):
        l3 = rnd.choice(fams)
        d = rnd.choice(dirs)
        kind = rnd.choices(("new", "established", "midstream", "invalid", "related"),
                           (40, 30, 10, 10, 10))[0]
        probe = _endpoints(rnd, vals, l3, d, ifaces, roles)
        proto = rnd.choice([p for p in sorted(vals.protos) if p not in (1, 58)] or [6])
        if rnd.random() < 0.12 or kind == "related" and proto not in (6, 17):
            proto = 1 if l3 == 4 else 58
        probe.update(_l4(rnd, vals, proto, l3))
        setup: list[dict] = []
        if kind == "established" and proto in (6, 17, 1, 58):
            opener = _reverse(probe)
            if proto == 6:
                opener["flags"], probe["flags"] = "S", "SA"
            elif proto in (1, 58):
                opener["icmp_type"] = 8 if l3 == 4 else 128
                probe["icmp_type"] = 0 if l3 == 4 else 129
                opener["icmp_id"] = probe["icmp_id"]
            setup = [opener]
        elif kind == "midstream" and proto == 6:
            syn = dict(probe, flags="S")
            synack = dict(_reverse(probe), flags="SA")
            setup = [syn, synack]
            probe["flags"] = rnd.choice(("A", "PA", "FA"))
            probe["payload"] = "x" * rnd.randrange(0, 20)
        elif kind == "invalid" and proto == 6:
            probe["flags"] = rnd.choice(("R", "F", "A", "SF", "SR", ""))
        elif kind == "related":
            opener = _reverse(probe)
            opener["proto"] = "udp" if proto not in (6, 17) else {6: "tcp", 17: "udp"}[proto]
            opener.pop("icmp_type", None)
            opener.pop("icmp_id", None)
            opener.setdefault("sport", rnd.randrange(1024, 65535))
            opener.setdefault("dport", rnd.choice(sorted(vals.ports)))
            if opener["proto"] == "tcp":
                opener["flags"] = "S"
            for k in ("sport", "dport", "flags"):
                probe.pop(k, None)
            probe.update(proto="icmp" if l3 == 4 else "icmpv6", icmp_type=3 if l3 == 4 else 1,
                         icmp_code=3 if l3 == 4 else 4, quote=0)
            setup = [opener]
        case = {"name": f"g{seed}-{i}-{kind}", "setup": setup, "probe": probe}
        cases.append(case)
    from fwc.packet import cases_from_json
    return cases_from_json(cases, "generated")


def _endpoints(rnd, vals: _Values, l3: int, d: str, ifaces, roles: dict) -> dict:
    """Source/destination for a probe.  An address is either local to the firewall (an `in`
    destination, an `out` source) or remote, never both across the case list: the harness makes
    `in` destinations local, and a local address arriving as a source would be a martian."""
    pool = sorted(a for a in vals.addrs[l3] if _usable(a))
    dsrc, ddst = DEFAULT_ADDRS[(d, l3)]

    def pick(default: str, role: str) -> str:
        choices = [a for a in pool if roles.get(a, role) == role]
        if choices and rnd.random() < 0.6:
            a = rnd.choice(choices)
            roles[a] = role
            return str(a)
        return default

    if d == "in":
        src = pick(dsrc, "remote")
        dst = _LOCAL[l3] if rnd.random() < 0.6 else pick(ddst, "local")
        # arriving where replies to it leave: routing and conntrack then agree
        return {"dir": "in", "src": src, "dst": dst, "iif": _route(ipaddress.ip_address(src), ifaces)}
    if d == "out":
        dst = pick(ddst, "remote")
        src = _LOCAL[l3] if rnd.random() < 0.7 else pick(dsrc, "local")
        return {"dir": "out", "src": src, "dst": dst, "oif": _route(ipaddress.ip_address(dst), ifaces)}
    dst = pick(ddst, "remote")
    oif = _route(ipaddress.ip_address(dst), ifaces)
    # a forwarded packet comes from the other side: its source routes out of another interface
    other = [a for a in pool if roles.get(a, "remote") == "remote" and _route(a, ifaces) != oif]
    if other and rnd.random() < 0.6:
        src_addr = rnd.choice(other)
        roles[src_addr] = "remote"
        src = str(src_addr)
    else:
        src = _OTHER_SIDE[(l3, oif == ifaces[0])]
    return {"dir": "fwd", "src": src, "dst": dst, "iif": _route(ipaddress.ip_address(src), ifaces),
            "oif": oif}


def _l4(rnd, vals: _Values, proto: int, l3: int) -> dict:
    if proto in (1, 58):
        return {"proto": "icmp" if l3 == 4 else "icmpv6",
                "icmp_type": rnd.choice(sorted(vals.icmp[l3])), "icmp_id": rnd.randrange(1, 65535)}
    name = {6: "tcp", 17: "udp"}.get(proto, str(proto))
    out = {"proto": name}
    if proto in (6, 17):
        out["sport"] = rnd.choice([rnd.randrange(1024, 65535)] + sorted(vals.ports))
        out["dport"] = rnd.choice(sorted(vals.ports))
    if proto == 6:
        out["flags"] = "S"
    return out


def _reverse(p: dict) -> dict:
    """The packet the other end would send first, for the probe to be its reply."""
    r = dict(p)
    r["src"], r["dst"] = p["dst"], p["src"]
    if "sport" in p:
        r["sport"], r["dport"] = p["dport"], p["sport"]
    d = p["dir"]
    r["dir"] = {"in": "out", "out": "in", "fwd": "fwd"}[d]
    r.pop("iif", None)
    r.pop("oif", None)
    if d == "in":
        r["oif"] = p.get("iif")
    elif d == "out":
        r["iif"] = p.get("oif")
    else:
        r["iif"], r["oif"] = p.get("oif"), p.get("iif")
    return r


def ruleset_ifaces(rs: ir.Ruleset, limit: int = 2) -> Optional[tuple[str, ...]]:
    """Interface names the rules match on (wildcards instantiated), for the harness topology."""
    names: list[str] = []
    for t in rs.tables:
        for c in t.chains:
            for r in c.rules:
                for m in r.matches:
                    if isinstance(m, ir.Interface) and m.name != "lo":
                        name = m.name[:-1] + "0" if m.name.endswith("+") else m.name
                        # (names the kernel cannot give a device, such as the alias label
                        # `venet0:0`, match no packet: the harness cannot create them)
                        if name not in names and len(name) <= 15 and name not in (".", "..") \
                                and not any(ch in name for ch in "/: \t\n"):
                            names.append(name)
    return tuple(names[:limit]) if names else None
