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


# nft nat maps (a port forward per key): the element the key finds gives the target, a key no
# element holds leaves the packet alone (here: delivered locally)
NATMAP = """table ip nat {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    iifname "eth0" dnat ip addr . port to tcp dport map { 80 : 203.0.113.10 . 8080, 443 : 203.0.113.11 . 443 }
    iifname "eth0" dnat ip to udp dport map { 53 : 203.0.113.12 }
  }
}
table ip filter {
  chain forward { type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ip daddr 203.0.113.10 tcp dport 8080 accept
    ip daddr 203.0.113.12 udp dport 53 accept
  }
  chain input { type filter hook input priority 0; policy drop;
    tcp dport 81 accept
  }
}
"""
_SYN = {"dir": "in", "iif": "eth0", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 40000,
        "dport": 80, "flags": "S"}
NATMAP_CASES = [
    {"name": "map-80", "probe": _SYN},
    {"name": "map-443-forward-drops", "probe": dict(_SYN, dport=443)},
    {"name": "no-element-81-local", "probe": dict(_SYN, dport=81)},
    {"name": "no-element-82-local-drops", "probe": dict(_SYN, dport=82)},
    {"name": "map-udp-53", "probe": {"dir": "in", "iif": "eth0", "proto": "udp",
                                     "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 4000,
                                     "dport": 53}},
    {"name": "map-80-reply", "setup": [_SYN],
     "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.10",
               "dst": "198.51.100.7", "sport": 8080, "dport": 40000, "flags": "SA"}},
    # the harness answers ARP only for addresses its cases name: name the udp target once
    {"name": "udp-target-known", "probe": {"dir": "fwd", "iif": "eth1", "oif": "eth0",
                                           "proto": "udp", "src": "203.0.113.12",
                                           "dst": "198.51.100.7", "sport": 53, "dport": 4000}},
]


def test_nft_nat_map_kernel_agrees_with_simulator(kernel):
    from fwc.frontends.nft import parse_nft
    rs = parse_nft(NATMAP, "natmap.nft")
    out = emit_nft(rs)
    assert "dnat ip addr . port to tcp dport map { 80 : 203.0.113.10 . 8080" in out
    assert parse_nft(out).tables == rs.tables  # fwc's text reads back to the same IR
    cases = cases_from_json(NATMAP_CASES)
    kernel.prepare(cases)
    sim = {r.name: (r.verdict, r.ct_state) for r in simulate(rs, cases, sim_options())}
    for loader in (("nft", NATMAP), ("nft", out)):
        got = {r.name: (r.verdict, r.ct_state) for r in kernel_verdicts(loader, cases, kernel)}
        assert got == sim, loader[1][:40]
    assert sim["map-80"][0] == "ACCEPT" and sim["map-443-forward-drops"][0] == "DROP"
    assert sim["no-element-81-local"][0] == "ACCEPT" and sim["map-80-reply"][1] == "ESTABLISHED"


CLASH = """table ip t {
 chain post {
  type nat hook postrouting priority srcnat; policy accept;
  ip saddr 192.0.2.77 oifname "eth0" snat to 192.0.2.1
 }
 chain late_in {
  type filter hook input priority 200; policy accept;
  ct status snat drop
 }
}
"""


def test_null_binding_moves_the_source_port_of_a_clashing_reply(kernel):
    """The host sends 192.0.2.77:25 -> 198.51.100.7:80, SNATed to 192.0.2.1; then
    198.51.100.7:80 -> 192.0.2.77:25 arrives as a new connection whose reply tuple is the first
    one's original.  The input null binding moves its source port (get_unique_tuple), so the
    entry gets SNAT status, which a chain after the input NAT sees (the simulator too).  The
    same happens to the destination port never: a dst rewrite cannot change the port."""
    from fwc.frontends.nft import parse_nft
    out = {"dir": "out", "proto": "udp", "src": "192.0.2.77", "dst": "198.51.100.7",
           "sport": 25, "dport": 80, "oif": "eth0"}
    back = {"dir": "in", "proto": "udp", "src": "198.51.100.7", "dst": "192.0.2.77",
            "sport": 80, "dport": 25, "iif": "eth0"}
    cases = cases_from_json([{"name": "clash", "setup": [out], "probe": back},
                             {"name": "no-clash", "probe": back}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("nft", CLASH), cases, kernel)
    sim = simulate(parse_nft(CLASH, "clash.nft"), cases, sim_options())
    assert [(r.setup_verdicts, r.verdict) for r in kern] == \
        [(("ACCEPT",), "DROP"), ((), "ACCEPT")]
    assert [(r.setup_verdicts, r.verdict, r.ct_state) for r in sim] == \
        [(r.setup_verdicts, r.verdict, r.ct_state) for r in kern]


def test_ipv6_masquerade_picks_the_source_address_selection_would(kernel):
    """MASQUERADE takes the address IPv6 source selection picks for the destination: among the
    outgoing interface's addresses (here also the host's own fd42::1 the harness put on it)
    the longest common prefix wins, so a packet from fd42::1 to fd42:0:0:1::5 keeps its
    source and the answer to fd42::1 is ESTABLISHED."""
    from fwc.frontends.nft import parse_nft
    text = ("table ip6 t {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
            "  oifname \"eth0\" masquerade\n }\n}\n")
    syn = {"dir": "out", "src": "fd42::1", "dst": "fd42:0:0:1::5", "sport": 40000,
           "dport": 80, "flags": "S", "oif": "eth0"}
    synack = {"dir": "in", "src": "fd42:0:0:1::5", "dst": "fd42::1", "sport": 80,
              "dport": 40000, "flags": "SA", "iif": "eth0"}
    cases = cases_from_json([{"name": "masq6", "setup": [syn], "probe": synack}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, kernel)
    sim = simulate(parse_nft(text, "m6.nft"), cases, sim_options())
    assert (kern[0].verdict, kern[0].ct_state) == ("ACCEPT", "ESTABLISHED")
    assert (sim[0].verdict, sim[0].ct_state) == ("ACCEPT", "ESTABLISHED")


REDIRECT6 = """table inet t {
 chain pre { type nat hook prerouting priority dstnat; policy accept; tcp dport 27 redirect to :27; }
 chain inp { type filter hook input priority filter; policy drop; ct status dnat accept; }
}
"""


@pytest.mark.parametrize("dst,note", [
    ("2001:db8:f::99", "an address the case adds to eth0 is the newest of its scope"),
    ("fe80::1", "a link-local destination takes a link-local address, not the global one"),
    ("2001:db8:f::1", "the configured address"),
])
def test_ipv6_redirect_takes_the_newest_address_of_the_destinations_scope(dst, note):
    """nf_nat_redirect_ipv6 takes the first address of the incoming device whose scope is the
    destination's, and the device lists the newest first: here each time the destination
    itself, so the tuple does not change and the connection has no DNAT status (dropped).
    One case per harness: an address one case adds would be the newest for the next."""
    from fwc.frontends.nft import parse_nft
    from fwc.testing.kernel import KernelHarness, kernel_or_skip
    kernel_or_skip()
    cases = cases_from_json([{"name": "r6", "probe": {
        "dir": "in", "src": "fe80::2" if dst.startswith("fe80") else "2001:db8:a::10",
        "dst": dst, "sport": 40000, "dport": 27, "flags": "S", "iif": "eth0"}}])
    with KernelHarness() as h:
        h.prepare(cases)
        kern = kernel_verdicts(("nft", REDIRECT6), cases, h)
    sim = simulate(parse_nft(REDIRECT6, "r6.nft"), cases, sim_options())
    assert (kern[0].verdict, kern[0].ct_state) == ("DROP", "NEW"), note
    assert (sim[0].verdict, sim[0].ct_state) == ("DROP", "NEW"), note
    # to an address of another scope it does change: DNAT, accepted (the simulator)
    other = cases_from_json([{"name": "r6b", "probe": {
        "dir": "in", "src": "2001:db8:a::10", "dst": "2001:db8:f::1", "sport": 40000,
        "dport": 27, "flags": "S", "iif": "eth0"}}])
    opts = sim_options()
    import attrs
    two = attrs.evolve(opts, interfaces={**opts.interfaces,
                                          "eth0": ("2001:db8:f::7/64",) + tuple(opts.interfaces["eth0"])})
    assert simulate(parse_nft(REDIRECT6, "r6.nft"), other, two)[0].verdict == "ACCEPT"


CT_STATUS_NAT = """table ip t {
 chain pre_raw {
  type filter hook prerouting priority raw; policy accept;
  tcp dport 9999 notrack
 }
 chain pre {
  type nat hook prerouting priority dstnat; policy accept;
  iifname "eth1" tcp dport 8080 dnat to 198.51.100.20:80
 }
 chain forward_filter {
  type filter hook forward priority filter; policy accept;
  tcp dport 80 ct status dnat drop
  tcp dport { 9999, 81 } ct status ! snat,dnat drop
  tcp dport 82 ct status snat,dnat drop
  tcp dport 83 ct status seen-reply drop
 }
}
"""


def test_ct_status_nat_bits_become_ctstate_and_decide_alike(kernel):
    """nft `ct status dnat` is iptables' `--ctstate DNAT` (--ctstatus has no NAT bits and
    iptables-restore refuses DNAT there); `ct status ! snat,dnat` does not match a packet
    without conntrack entry, so its iptables form lists INVALID,UNTRACKED in the negation."""
    from fwc.backends.iptables import emit_iptables
    from fwc.frontends.nft import parse_nft
    rs = parse_nft(CT_STATUS_NAT, "cs.nft")
    v4 = emit_iptables(rs)["ip"]
    assert "--ctstate DNAT -j DROP" in v4 and "! --ctstate SNAT,DNAT,INVALID,UNTRACKED" in v4
    syn = {"dir": "fwd", "iif": "eth1", "oif": "eth0", "src": "203.0.113.5",
           "dst": "198.51.100.99", "sport": 40000, "flags": "S"}
    cases = cases_from_json([{"name": f"{name}-{port}", "probe": dict(syn, dport=port)}
                             for name, port in (("dnat", 8080), ("untracked", 9999),
                                                ("plain", 81), ("plain", 82), ("plain", 83))])
    kernel.prepare(cases)
    nft = kernel_verdicts(("nft", CT_STATUS_NAT), cases, kernel)
    ipt = kernel_verdicts(("iptables", v4), cases, kernel)
    sim = simulate(rs, cases, sim_options())
    got = {c.name: (a.verdict, b.verdict, s.verdict) for c, a, b, s in zip(cases, nft, ipt, sim)}
    assert got == {"dnat-8080": ("DROP",) * 3, "untracked-9999": ("ACCEPT",) * 3,
                   "plain-81": ("DROP",) * 3, "plain-82": ("ACCEPT",) * 3,
                   "plain-83": ("ACCEPT",) * 3}, got
