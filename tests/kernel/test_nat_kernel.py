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
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth1 -d 198.51.100.99/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.20:80
-A POSTROUTING -o eth0 -s 203.0.113.0/24 -p udp -j MASQUERADE
-A POSTROUTING -o eth0 -s 203.0.113.0/24 -p tcp -j SNAT --to-source 192.0.2.1:2000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate DNAT -p tcp -m tcp --dport 80 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p udp -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p tcp -m tcp --dport 443 -j ACCEPT
COMMIT
"""

SNAT_SYN = {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.5",
            "dst": "198.51.100.10", "sport": 40000, "dport": 443}
MASQ_UDP = {"dir": "fwd", "iif": "eth1", "oif": "eth0", "proto": "udp", "src": "203.0.113.5",
            "dst": "198.51.100.10", "sport": 40000, "dport": 53}
DNAT_SYN = {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.5",
            "dst": "198.51.100.99", "sport": 40000, "dport": 8080}

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
    # replies: conntrack un-NATs them, and the kernel routes them back to the inside
    {"name": "snat-reply", "setup": [SNAT_SYN],
     "probe": {"dir": "in", "iif": "eth0", "src": "198.51.100.10", "dst": "192.0.2.1",
               "sport": 443, "dport": 2000, "flags": "SA"}},
    {"name": "masq-reply", "setup": [MASQ_UDP],
     "probe": {"dir": "in", "iif": "eth0", "proto": "udp", "src": "198.51.100.10",
               "dst": "192.0.2.1", "sport": 53, "dport": 40000}},
    # the DNATed SYN also left SNATed (POSTROUTING -o eth0): the server answers 192.0.2.1:2000
    {"name": "dnat-reply", "setup": [DNAT_SYN],
     "probe": {"dir": "in", "iif": "eth0", "src": "198.51.100.20", "dst": "192.0.2.1",
               "sport": 80, "dport": 2000, "flags": "SA"}},
    {"name": "unrelated-to-masq-address", "setup": [MASQ_UDP],
     "probe": {"dir": "in", "iif": "eth0", "proto": "udp", "src": "198.51.100.10",
               "dst": "192.0.2.1", "sport": 53, "dport": 40001}},
]


@pytest.mark.parametrize("backend", ["iptables", "nft"])
def test_nat_kernel_agrees_with_simulator(kernel, backend):
    rs = parse_iptables_save(RULES, "nat.rules")
    cases = cases_from_json(CASES)
    loader = ("iptables", RULES) if backend == "iptables" else ("nft", emit_nft(rs))
    kernel.prepare(cases)
    got = {r.name: (r.verdict, r.ct_state) for r in kernel_verdicts(loader, cases, kernel)}
    sim = {r.name: (r.verdict, r.ct_state) for r in simulate(rs, cases, sim_options())}
    assert got == sim
    assert got["dnat-8080"][0] == "ACCEPT" and got["snat-443"][0] == "ACCEPT"
    assert got["no-dnat-8081"][0] == "DROP"
    for reply in ("snat-reply", "masq-reply", "dnat-reply"):
        assert got[reply] == ("ACCEPT", "ESTABLISHED"), (reply, got[reply])
