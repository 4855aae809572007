"""nft rulesets written by distributions and tools (firewalld, LXD, Arch's examples) translated
to iptables: family tests, `ip version`, `ip protocol`, `iif lo`, ICMP type sets and address
or port sets become iptables rules one family at a time (fwc/backends/iptables_lower.py).
The nft original and fwc's iptables-restore output are loaded in turn into the kernel harness
and must decide every case alike; the simulator agrees with both."""

from __future__ import annotations

import pytest

from fwc.backends.iptables import emit_iptables
from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

RULESET = """table inet t {
 set lan4 {
  type ipv4_addr
  flags interval
  auto-merge
  elements = { 10.0.0.0/8, 198.51.100.0/25, 198.51.100.128/25 }
 }
 chain lan {
  tcp dport 22 accept
  udp dport { 53, 5353-5354 } accept
 }
 chain input {
  type filter hook input priority filter; policy drop;
  iif lo accept
  ct state established,related accept
  ip version 4 tcp dport 80 accept
  ip6 version 6 tcp dport 81 accept
  ip protocol udp udp dport 7 accept
  meta nfproto ipv6 tcp dport 82 accept
  icmp type { echo-request, 13 } accept
  icmpv6 type { echo-request, nd-neighbor-solicit } accept
  ip saddr @lan4 jump lan
  ip6 saddr { 2001:db8:a::/64, 2001:db8:a::/80 } jump lan
  tcp dport 443 reject with icmp host-prohibited
  tcp dport 444 reject with icmpv6 admin-prohibited
 }
}
"""
C4, S4, C6, S6 = "198.51.100.7", "192.0.2.1", "2001:db8:a::7", "2001:db8:f::1"


def _cases():
    out = []
    for src, dst in ((C4, S4), (C6, S6)):
        for port in (22, 80, 81, 82, 443, 444, 9):
            out.append({"name": f"{src}-tcp{port}", "probe": {
                "dir": "in", "src": src, "dst": dst, "sport": 40000, "dport": port,
                "flags": "S"}})
        for port in (7, 53, 5354, 5355):
            out.append({"name": f"{src}-udp{port}", "probe": {
                "dir": "in", "proto": "udp", "src": src, "dst": dst, "sport": 5000,
                "dport": port}})
        for icmp_type in ((8, 13, 17) if src == C4 else (128, 129)):
            out.append({"name": f"{src}-icmp{icmp_type}", "probe": {
                "dir": "in", "src": src, "dst": dst, "icmp_type": icmp_type, "icmp_id": 7}})
    # from outside the LAN set: port 22 is not open to it
    out.append({"name": "203.0.113.9-tcp22", "probe": {
        "dir": "in", "src": "203.0.113.9", "dst": "203.0.113.1", "iif": "eth1",
        "sport": 40000, "dport": 22, "flags": "S"}})
    return cases_from_json(out)


def test_nft_ruleset_and_its_iptables_translation_decide_alike():
    kernel_or_skip()
    rs = parse_nft(RULESET, "t.nft")
    out = emit_iptables(rs)
    cases = _cases()
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", RULESET), cases, h)
        ipt = kernel_verdicts(("iptables", out["ip"], out["ip6"]), cases, h)
    sim = Simulator(rs, SimOptions())
    got = [(c.name, a.verdict, b.verdict, sim.run_case(c).verdict)
           for c, a, b in zip(cases, nft, ipt)]
    assert [g for g in got if len(set(g[1:])) != 1] == []
    assert {g[1] for g in got} == {"ACCEPT", "DROP", "REJECT"}
    # adjacent and overlapping prefixes were merged: one rule per merged prefix
    assert out["ip"].count("-j lan") == 2 and out["ip6"].count("-j lan") == 1


SHARED_LIMIT = """table ip t {
 chain input {
  type filter hook input priority filter; policy drop;
  icmp type { echo-request, 13 } limit rate 1/minute burst 1 packets accept
 }
}
"""


def test_a_split_rule_keeps_one_limit_for_all_its_pieces():
    """`icmp type { a, b } limit ...` needs one iptables rule per type; they jump to one chain
    holding the limit, so both types still draw on one bucket (the second packet, of the
    other type, finds it empty)."""
    kernel_or_skip()
    out = emit_iptables(parse_nft(SHARED_LIMIT, "l.nft"))["ip"]
    assert out.count("-j INPUT_split1") == 2 and ":INPUT_split1 - [0:0]" in out
    ping = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "icmp_type": 8, "icmp_id": 1}
    stamp = dict(ping, icmp_type=13)
    cases = cases_from_json([{"name": "shared", "setup": [ping, stamp], "probe": ping}])
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", SHARED_LIMIT), cases, h)
        ipt = kernel_verdicts(("iptables", out, None), cases, h)
    want = (("ACCEPT", "DROP"), "DROP")
    assert (nft[0].setup_verdicts, nft[0].verdict) == want
    assert (ipt[0].setup_verdicts, ipt[0].verdict) == want
