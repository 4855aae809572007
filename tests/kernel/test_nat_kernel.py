"""NATed packets in the kernel and in the simulator: the harness recognises a forwarded packet
after NAT by its tag (IPv4 ID / IPv6 flow label), so SNAT/MASQUERADE/DNAT verdicts and ct
states can be compared with `fwc simulate`."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts

pytestmark = pytest.mark.kernel

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth1 -d 198.51.100.99/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.20:80
-A POSTROUTING -o eth0 -s 203.0.113.0/24 -p udp -j MASQUERADE
-A POSTROUTING -o eth0 -s 203.0.113.0/24 -p tcp -j SNAT --to-source 192.0.2.1:2000-2100
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate DNAT -p tcp -m tcp --dport 80 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p udp -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p tcp -m tcp --dport 443 -j ACCEPT
COMMIT
"""

CASES = [
    {"name": "dnat-8080", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.5",
                                    "dst": "198.51.100.99", "dport": 8080}},
    {"name": "no-dnat-8081", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0",
                                       "src": "203.0.113.5", "dst": "198.51.100.99", "dport": 8081}},
    {"name": "masq-udp", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0", "proto": "udp",
                                   "src": "203.0.113.5", "dst": "198.51.100.10", "dport": 53}},
    {"name": "snat-443", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.5",
                                   "dst": "198.51.100.10", "dport": 443}},
    {"name": "snat-444-dropped", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0",
                                           "src": "203.0.113.5", "dst": "198.51.100.10",
                                           "dport": 444}},
]


@pytest.mark.parametrize("backend", ["iptables", "nft"])
def test_nat_kernel_agrees_with_simulator(kernel, backend):
    rs = parse_iptables_save(RULES, "nat.rules")
    cases = cases_from_json(CASES)
    loader = ("iptables", RULES) if backend == "iptables" else ("nft", emit_nft(rs))
    kernel.prepare(cases)
    got = {r.name: (r.verdict, r.ct_state) for r in kernel_verdicts(loader, cases, kernel)}
    sim = {r.name: (r.verdict, r.ct_state) for r in simulate(rs, cases)}
    assert got == sim
    assert got["dnat-8080"][0] == "ACCEPT" and got["snat-443"][0] == "ACCEPT"
    assert got["no-dnat-8081"][0] == "DROP"
