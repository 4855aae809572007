"""Packets the kernel drops while routing them, whatever the ruleset says: IPv4 martians
(ip_route_input_slow, after prerouting: a multicast, broadcast, 0.0.0.0/8 or loopback source,
the host's own address as source, a 0.0.0.0/8 or loopback destination) and IPv6 packets
ip6_rcv_core drops before any hook (multicast or loopback source, loopback destination).  The
simulator must drop them too; an accept-all ruleset shows it."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import simulate
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

OPEN = """table inet t {
 chain pre { type filter hook prerouting priority -150; policy accept; }
 chain i { type filter hook input priority 0; policy accept; }
 chain f { type filter hook forward priority 0; policy accept; }
}
"""

CASES = [
 {"name": "mc-zero-src-local-group", "probe": {"dir": "in", "proto": "udp", "src": "0.0.0.0", "dst": "224.0.0.1"}},
 {"name": "mc-zero-src-other-group", "probe": {"dir": "in", "proto": "udp", "src": "0.0.0.0", "dst": "239.1.1.1"}},
 {"name": "mc-lo-src", "probe": {"dir": "in", "proto": "udp", "src": "127.0.0.1", "dst": "224.0.0.1"}},
 {"name": "mc-own-src", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.1", "dst": "224.0.0.1"}},
 {"name": "mc-plain", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.9", "dst": "224.0.0.1"}},
 {"name": "mc-not-joined", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.9", "dst": "224.0.0.251"}},
 {"name": "mc-not-joined-2", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.9", "dst": "239.1.1.1"}},
 {"name": "mc-igmp", "probe": {"dir": "in", "proto": 2, "src": "192.0.2.9", "dst": "239.1.1.1"}},
 {"name": "mc-igmp-local", "probe": {"dir": "in", "proto": 2, "src": "192.0.2.9", "dst": "224.0.0.22"}},
 {"name": "own-src", "probe": {"dir": "in", "src": "192.0.2.1", "dst": "192.0.2.1"}},
 {"name": "lo-src", "probe": {"dir": "in", "src": "127.0.0.1", "dst": "192.0.2.1"}},
 {"name": "lo-dst", "probe": {"dir": "in", "src": "198.51.100.7", "dst": "127.0.0.1"}},
 {"name": "mcast-src", "probe": {"dir": "in", "proto": "udp", "src": "224.0.0.5", "dst": "192.0.2.1"}},
 {"name": "bcast-src", "probe": {"dir": "in", "proto": "udp", "src": "255.255.255.255", "dst": "192.0.2.1"}},
 {"name": "zero-src", "probe": {"dir": "in", "proto": "udp", "src": "0.0.0.0", "dst": "192.0.2.1"}},
 {"name": "fwd-own-src", "probe": {"dir": "fwd", "src": "192.0.2.1", "dst": "203.0.113.10"}},
 {"name": "fwd-lo-src", "probe": {"dir": "fwd", "src": "127.0.0.2", "dst": "203.0.113.10"}},
 {"name": "v6-own-src", "probe": {"dir": "in", "src": "2001:db8:f::1", "dst": "2001:db8:f::1"}},
 {"name": "v6-lo-src", "probe": {"dir": "in", "src": "::1", "dst": "2001:db8:f::1"}},
 {"name": "v6-mcast-src", "probe": {"dir": "in", "proto": "udp", "src": "ff02::1", "dst": "2001:db8:f::1"}},
 {"name": "v4-in-eth1-src", "probe": {"dir": "in", "iif": "eth1", "src": "192.0.2.1", "dst": "192.0.2.1"}},
 {"name": "other-own-addr", "probe": {"dir": "in", "src": "203.0.113.1", "dst": "192.0.2.1"}},
 {"name": "v6-mapped-src", "probe": {"dir": "in", "src": "::ffff:198.51.100.7", "dst": "2001:db8:f::1"}},
 {"name": "subnet-bcast-src", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.255", "dst": "192.0.2.1"}},
 {"name": "bcast-dst", "probe": {"dir": "in", "proto": "udp", "src": "192.0.2.9", "dst": "255.255.255.255"}},
 {"name": "fwd-to-lo-dst", "probe": {"dir": "fwd", "src": "198.51.100.7", "dst": "127.0.0.5"}},
]


def test_martians_are_dropped_as_the_kernel_drops_them(kernel):
    cases = cases_from_json(CASES)
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", OPEN), cases, kernel)
    got = simulate(parse_nft(OPEN, "open.nft"), cases, sim_options())
    assert [(c.name, w.verdict) for c, w in zip(cases, want)] == \
        [(c.name, g.verdict) for c, g in zip(cases, got)]
    # dropped before conntrack (IPv6) or after it saw them (IPv4 routing)
    assert [(c.name, w.ct_state) for c, w in zip(cases, want) if w.verdict == "DROP"] == \
        [(c.name, g.ct_state) for c, g in zip(cases, got) if g.verdict == "DROP"]
    assert {w.verdict for w in want} == {"ACCEPT", "DROP"}
