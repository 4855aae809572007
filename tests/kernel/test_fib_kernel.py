"""nft `fib ... oif` route lookups (reverse-path filters such as firewalld's
`fib saddr . mark . iif oif missing drop`): the simulator's host routes like the kernel's."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

RULESET = """table inet t {
 chain pre {
  type filter hook prerouting priority raw; policy accept;
  udp dport 1 fib saddr . iif oif missing drop
  udp dport 2 fib saddr oif "eth1" drop
  udp dport 3 fib saddr . mark . iif oif exists drop
  udp dport 4 fib daddr oif missing drop
  udp dport 5 fib saddr oifname != "eth0" drop
 }
 chain forward {
  type filter hook forward priority filter; policy accept;
  udp dport 6 fib daddr oif "eth1" drop
  udp dport 7 fib saddr . iif oif missing drop
 }
}
"""

# (source, destination, input interface); every one is sent to each port in PORTS
SOURCES = [
    ("198.51.100.7", "192.0.2.1", "eth0"),    # a client behind eth0's gateway
    ("198.51.100.7", "192.0.2.1", "eth1"),    # ... spoofed on eth1
    ("203.0.113.9", "203.0.113.1", "eth1"),   # eth1's own network
    ("203.0.113.9", "192.0.2.1", "eth0"),     # ... on the wrong interface
    ("192.0.2.77", "192.0.2.1", "eth0"),      # eth0's network
    ("2001:db8:a::7", "2001:db8:f::1", "eth0"),
    ("2001:db8:a::7", "2001:db8:f::1", "eth1"),
    ("2001:db8:b::9", "2001:db8:b::1", "eth1"),
    ("2001:db8:b::9", "2001:db8:f::1", "eth0"),
    ("fe80::9", "2001:db8:f::1", "eth1"),     # link-local: looked up on the input interface
    ("fe80::9", "2001:db8:b::1", "eth0"),
]
# sources the strict filter (port 1) must refuse, or must let through though unrouted
STRICT_ONLY = [
    ("192.0.2.1", "192.0.2.1", "eth0"),       # a local address
    ("127.0.0.1", "192.0.2.1", "eth0"),
    ("2001:db8:f::1", "2001:db8:f::1", "eth0"),
    ("::1", "2001:db8:f::1", "eth0"),
    ("2001:db8:f::", "2001:db8:f::1", "eth0"),  # subnet-router anycast
    ("0.0.0.0", "255.255.255.255", "eth1"),   # DHCP discover: found where it came in
    ("0.0.0.0", "224.0.0.1", "eth1"),
]
FORWARDED = [
    ("198.51.100.7", "203.0.113.9", "eth0"),
    ("198.51.100.7", "203.0.113.9", "eth1"),
    ("203.0.113.9", "198.51.100.8", "eth1"),
    ("2001:db8:a::7", "2001:db8:b::9", "eth0"),
    ("2001:db8:a::7", "2001:db8:b::9", "eth1"),
    ("2001:db8:b::9", "2001:db8:a::8", "eth1"),
]


def _cases():
    out = []
    for src, dst, iif in SOURCES:
        for port in (1, 2, 3, 4, 5):
            out.append({"name": f"in-{src}-{iif}-{port}", "probe": {
                "dir": "in", "proto": "udp", "src": src, "dst": dst, "iif": iif,
                "sport": 5000, "dport": port}})
    for src, dst, iif in STRICT_ONLY:
        out.append({"name": f"in-{src}-{dst}-{iif}-1", "probe": {
            "dir": "in", "proto": "udp", "src": src, "dst": dst, "iif": iif,
            "sport": 5000, "dport": 1}})
    for src, dst, iif in FORWARDED:
        for port in (6, 7):
            out.append({"name": f"fwd-{src}-{iif}-{port}", "probe": {
                "dir": "fwd", "proto": "udp", "src": src, "dst": dst, "iif": iif,
                "sport": 5000, "dport": port}})
    return cases_from_json(out)


def test_fib_oif_simulator_agrees_with_kernel():
    kernel_or_skip()
    cases = _cases()
    with KernelHarness() as h:
        h.prepare(cases)
        kern = kernel_verdicts(("nft", RULESET), cases, h)
    sim = Simulator(parse_nft(RULESET, "fib.nft"), SimOptions())
    ours = [sim.run_case(c) for c in cases]
    diff = [(c.name, k.verdict, s.verdict) for c, k, s in zip(cases, kern, ours)
            if k.verdict != s.verdict]
    assert not diff
    # the ruleset decides both ways (the test is not vacuous)
    assert {k.verdict for k in kern} == {"ACCEPT", "DROP"}
