"""nft rulesets written by distributions and tools (firewalld, LXD, Arch's examples) translated
to iptables: family tests, `ip version`, `ip protocol`, `iif lo`, ICMP type sets and address
or port sets become iptables rules one family at a time (fwc/backends/iptables_lower.py).
The nft original and fwc's iptables-restore output are loaded in turn into the kernel harness
and must decide every case alike; the simulator agrees with both."""

from __future__ import annotations

import pytest

from fwc.backends.iptables import emit_iptables
from fwc.errors import ErrorGroup
from fwc.backends.nft import emit_nft
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


def _decide_alike(nft_text: str, rs, out: dict, cases) -> list:
    """(case, nft verdict, iptables verdict, simulated verdict) per case; asserts they agree."""
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", nft_text), cases, h)
        ipt = kernel_verdicts(("iptables", out.get("ip"), out.get("ip6")), cases, h)
    sim = Simulator(rs, SimOptions())
    got = [(c.name, a.verdict, b.verdict, sim.run_case(c).verdict)
           for c, a, b in zip(cases, nft, ipt)]
    assert [g for g in got if len(set(g[1:])) != 1] == []
    return got


def _in_case(src: str, dst: str, proto: str, port: int) -> dict:
    """One incoming packet to `port` (a SYN for tcp), named SRC-PROTOPORT."""
    probe = {"dir": "in", "proto": proto, "src": src, "dst": dst, "sport": 40000, "dport": port}
    if proto == "tcp":
        probe["flags"] = "S"
    return {"name": f"{src}-{proto}{port}", "probe": probe}


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
    got = _decide_alike(RULESET, rs, out, cases)
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


SEVERAL_ACTIONS = """table ip t {
 chain other {
  meta mark 7 accept
  return
 }
 chain input {
  type filter hook input priority filter; policy drop;
  tcp dport 22 log prefix "ssh " drop
  ip saddr { 198.51.100.1, 198.51.100.2 } log prefix "bad " counter reject
  tcp dport 80 limit rate 2/minute burst 2 packets log prefix "lim " accept
  meta mark 0 tcp dport 81 meta mark set 1 log accept
  udp dport 53 meta mark set 7 jump other
  udp dport 54 accept
 }
}
"""


def test_rules_with_several_actions_become_one_iptables_rule_per_action():
    """`log prefix "x" drop` has one target per iptables rule: the matches are repeated before
    each action when they keep no state and only a log comes first; otherwise they are tested
    once and jump to a chain holding one rule per action."""
    kernel_or_skip()
    rs = parse_nft(SEVERAL_ACTIONS, "acts.nft")
    out = emit_iptables(rs)["ip"]
    assert '-p tcp -m tcp --dport 22 -j LOG --log-prefix "ssh "' in out
    assert "--limit 2/minute --limit-burst 2 -j INPUT_split" in out
    pkt = {"dir": "in", "src": "198.51.100.9", "dst": "192.0.2.1", "sport": 40000, "flags": "S"}
    cases = cases_from_json(
        [{"name": f"tcp{p}", "probe": dict(pkt, dport=p)} for p in (22, 80, 81, 82)]
        + [{"name": "tcp80-again", "setup": [dict(pkt, dport=80)] * 2, "probe": dict(pkt, dport=80)},
           {"name": "bad", "probe": dict(pkt, src="198.51.100.2", dport=9)},
           {"name": "dns", "probe": {**pkt, "proto": "udp", "dport": 53, "flags": None}},
           {"name": "dns54", "probe": {**pkt, "proto": "udp", "dport": 54, "flags": None}}])
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", SEVERAL_ACTIONS), cases, h)
        ipt = kernel_verdicts(("iptables", out), cases, h)
    assert [(c.name, a.verdict, b.verdict) for c, a, b in zip(cases, nft, ipt)
            if a.verdict != b.verdict] == []
    assert nft[cases.index(next(c for c in cases if c.name == "tcp80-again"))].verdict == "DROP"
    sim = Simulator(rs, SimOptions())  # (it takes a limit as within its rate: not tcp80-again)
    got = [(c.name, a.verdict, sim.run_case(c).verdict) for c, a in zip(cases, nft)
           if c.name != "tcp80-again"]
    assert [g for g in got if g[1] != g[2]] == []
    assert {g[1] for g in got} == {"ACCEPT", "DROP", "REJECT"}


SEVERAL_IFACES = """table ip t {
 chain forward {
  type filter hook forward priority filter; policy accept;
  oifname != "eth1" oifname != "lo" tcp dport 80 drop
  oifname != "eth0" oifname != "eth9" oifname != "lo" tcp dport 81 log prefix "x " drop
  oifname "eth1" oifname != "eth0" tcp dport 82 reject
  iifname "eth0" iifname "eth0" tcp dport 83 drop
 }
}
"""


def test_several_tests_of_one_interface_direction():
    """iptables takes one -o per rule: negated names past the first return from a chain of
    their own before the rule's actions; a negation a positive name implies is left out."""
    kernel_or_skip()
    rs = parse_nft(SEVERAL_IFACES, "ifaces.nft")
    out = emit_iptables(rs)["ip"]
    assert "-A FORWARD_split1 -o lo -j RETURN" in out and out.count(" -o ") == 6
    cases = []
    for iif, oif, src, dst in (("eth0", "eth1", "198.51.100.10", "203.0.113.10"),
                               ("eth1", "eth0", "203.0.113.10", "198.51.100.10")):
        for port in (80, 81, 82, 83, 84):
            cases.append({"name": f"{iif}-{port}", "probe": {
                "dir": "fwd", "iif": iif, "oif": oif, "src": src, "dst": dst, "dport": port}})
    cases = cases_from_json(cases)
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", SEVERAL_IFACES), cases, h)
        ipt = kernel_verdicts(("iptables", out), cases, h)
    assert [(c.name, a.verdict, b.verdict) for c, a, b in zip(cases, nft, ipt)
            if a.verdict != b.verdict] == []
    assert {a.verdict for a in nft} == {"ACCEPT", "DROP", "REJECT"}


DSCP_INET = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 1 ip dscp 0 drop
  tcp dport 2 ip6 dscp cs1 drop
  tcp dport 3 ip dscp != 0x2e drop
  tcp dport 4 ip6 dscp 0 reject
  tcp dport 5 ip dscp { 0, 8 } drop
 }
}
"""


def test_dscp_tests_in_an_inet_table_are_per_family():
    """In an inet table `ip dscp` also tests the family (negated or not): -m dscp in the
    iptables output of that family only; the simulator reads the DSCP bits too."""
    kernel_or_skip()
    rs = parse_nft(DSCP_INET, "dscp.nft")
    out = emit_iptables(rs)
    cases = cases_from_json([
        {"name": f"{fam}-{p}", "probe": {"dir": "in", "src": src, "dst": dst, "dport": p}}
        for fam, src, dst in (("v4", "198.51.100.7", "192.0.2.1"),
                              ("v6", "2001:db8:a::7", "2001:db8:f::1"))
        for p in range(1, 7)])
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", DSCP_INET), cases, h)
        ipt = kernel_verdicts(("iptables", out["ip"], out["ip6"]), cases, h)
    assert [(c.name, a.verdict) for c, a in zip(cases, nft)] == \
        [(c.name, b.verdict) for c, b in zip(cases, ipt)]
    sim = Simulator(rs, SimOptions())
    assert [a.verdict for a in nft] == [sim.run_case(c).verdict for c in cases]
    assert {a.verdict for a in nft} == {"ACCEPT", "DROP", "REJECT"}


INET_FIELDS = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 1 ip ttl 64 drop
  tcp dport 2 ip saddr != 192.0.2.0/24 drop
  tcp dport 3 ip6 hoplimit 64 drop
  ip protocol != tcp udp dport 53 drop
  tcp dport 4 tcp flags == syn drop
  tcp dport 5 tcp flags cwr drop
  tcp dport 6 tcp flags & (syn | ecn) == syn | ecn reject
  udplite dport 7 drop
 }
}
"""


def test_inet_family_fields_tcp_ecn_flags_and_udplite():
    """What an inet rule's header field implies (the family, negated or not), a negated
    protocol that a port's protocol decides, ECE/CWR (-m ecn: --tcp-flags knows six flags)
    and udplite ports (multiport: iptables has no udplite match), nft against iptables."""
    kernel_or_skip()
    rs = parse_nft(INET_FIELDS, "inet.nft")
    out = emit_iptables(rs)
    assert "-m ecn ! --ecn-tcp-ece ! --ecn-tcp-cwr" in out["ip"]
    assert "-m ttl" not in out["ip6"] and "-m hl" not in out["ip"]
    raw = []
    for fam, src, dst in (("v4", "198.51.100.7", "192.0.2.1"),
                          ("v6", "2001:db8:a::7", "2001:db8:f::1")):
        base = {"dir": "in", "src": src, "dst": dst}
        raw += [{"name": f"{fam}-{p}-{f}", "probe": dict(base, dport=p, flags=f)}
                for p in (1, 2, 3, 4, 5, 6) for f in ("S", "SEC", "SE", "A", "AC")]
        raw += [{"name": f"{fam}-udp53", "probe": dict(base, proto="udp", dport=53)},
                {"name": f"{fam}-tcp53", "probe": dict(base, dport=53)},
                {"name": f"{fam}-udplite7", "probe": dict(base, proto="udplite", dport=7)}]
    cases = cases_from_json(raw)
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", INET_FIELDS), cases, h)
        ipt = kernel_verdicts(("iptables", out["ip"], out["ip6"]), cases, h)
    assert [(c.name, a.verdict) for c, a in zip(cases, nft)] == \
        [(c.name, b.verdict) for c, b in zip(cases, ipt)]
    assert {a.verdict for a in nft} == {"ACCEPT", "DROP", "REJECT"}


MASKED = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  ip saddr & 255.255.0.255 == 198.51.0.7 tcp dport 22 drop
  ip saddr & 0.0.0.255 != 0.0.0.7 tcp dport 23 drop
  ip6 saddr & ffff::ffff == 2001::7 tcp dport 24 drop
  ip saddr & 255.255.255.0 == 198.51.100.0 tcp dport 25 drop
 }
}
"""


def test_non_prefix_address_masks_read_write_and_decide_alike():
    """OpenWrt's fw4 writes `ip saddr & 255.0.255.0 == ...` for subnet-mask options, and fwc's
    own nft output does for iptables' `-s 10.0.12.0/255.0.255.0`: read back, written as iptables'
    non-contiguous netmask, the kernel decides alike under both, and so does the simulator."""
    kernel_or_skip()
    rs = parse_nft(MASKED, "m.nft")
    out = emit_iptables(rs)
    assert "-s 198.51.0.7/255.255.0.255" in out["ip"] and "! -s 0.0.0.7/0.0.0.255" in out["ip"]
    assert "-s 2001::7/ffff::ffff" in out["ip6"] and "-s 198.51.100.0/24" in out["ip"]
    cases = []
    for src in ("198.51.100.7", "198.51.100.8", "198.51.7.7", "2001:db8:a::7", "2001:db8:a::8"):
        dst = "2001:db8:f::1" if ":" in src else "192.0.2.1"
        for port in (22, 23, 24, 25):
            cases.append({"name": f"{src}-{port}", "probe": {
                "dir": "in", "src": src, "dst": dst, "sport": 40000, "dport": port, "flags": "S"}})
    cases = cases_from_json(cases)
    got = _decide_alike(MASKED, rs, out, cases)
    assert {g[1] for g in got} == {"ACCEPT", "DROP"}
    # and the iptables text reads back to the same matches
    from fwc.frontends.iptables import parse_iptables_save
    back = parse_iptables_save(out["ip"], "b.rules", "ip")
    assert [r.matches for r in back.tables[0].chains[0].rules] == \
        [r.matches for r in emit_rules(rs, "ip")]


def emit_rules(rs, family):
    from fwc.frontends.iptables import parse_iptables_save
    return parse_iptables_save(emit_iptables(rs)[family], "x.rules", family).tables[0].chains[0].rules


NEVER_RULES = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -p udp -m udp --dport 65535:1 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -m length --length 500:100 -j DROP
-A INPUT -p tcp -m tcp --dport 23 -m iprange --src-range 198.51.100.9-198.51.100.1 -j DROP
COMMIT
"""


def test_rules_that_match_nothing_are_written_so_iptables_nft_matches_nothing():
    """`--dport 65535:1` (udp) matches no packet; its IR is a negated full port range, and
    iptables-nft 1.8.9 loads `! --dport 0:65535` as no port test at all (every UDP packet):
    fwc writes `-m multiport ! --dports 0:65535`, and other never-matching tests (an inverted
    length or address range) as `-m length --length 65535:0`.  Original, fwc's iptables text
    from it, the same text from its nft translation, and the simulator all accept."""
    from fwc.frontends.iptables import parse_iptables_save
    kernel_or_skip()
    rs = parse_iptables_save(NEVER_RULES, "n.rules", "ip")
    ours = emit_iptables(rs)["ip"]
    again = emit_iptables(parse_nft(emit_nft(rs), "n.nft"))["ip"]
    assert "! --dport 0:65535" not in ours + again and "--dports 0:65535" in ours
    cases = cases_from_json([
        {"name": f"{proto}-{port}", "probe": {"dir": "in", "proto": proto, "src": "198.51.100.5",
                                             "dst": "192.0.2.1", "sport": 40000, "dport": port}}
        for proto, port in (("udp", 53), ("udp", 65535), ("tcp", 22), ("tcp", 23))])
    with KernelHarness() as h:
        h.prepare(cases)
        got = [kernel_verdicts(("iptables", text), cases, h) for text in (NEVER_RULES, ours, again)]
    sim = Simulator(rs, SimOptions())
    assert [[r.verdict for r in g] for g in got] == [["ACCEPT"] * 4] * 3
    assert [sim.run_case(c).verdict for c in cases] == ["ACCEPT"] * 4


TWO_ADDRESSES = """table ip t {
 chain input {
  type filter hook input priority filter; policy accept;
  ip saddr 198.51.100.0/24 ip saddr != 198.51.100.0/28 tcp dport 22 drop
  ip daddr != 192.0.2.0/30 ip daddr != 192.0.2.1 tcp dport 23 drop
 }
}
"""


def test_a_second_test_of_one_address_field_goes_through_iprange():
    """iptables takes one -s and one -d per rule (iptables-restore refuses two): the second
    test is `-m iprange [!] --src-range lo-hi`; the kernel decides alike under both texts."""
    kernel_or_skip()
    rs = parse_nft(TWO_ADDRESSES, "two.nft")
    v4 = emit_iptables(rs)["ip"]
    assert "-m iprange ! --src-range 198.51.100.0-198.51.100.15" in v4
    cases = cases_from_json([
        {"name": f"{src}-{port}", "probe": {"dir": "in", "src": src, "dst": "192.0.2.1",
                                           "sport": 40000, "dport": port, "flags": "S"}}
        for src in ("198.51.100.7", "198.51.100.77", "203.0.113.9") for port in (22, 23)])
    got = _decide_alike(TWO_ADDRESSES, rs, {"ip": v4}, cases)
    assert {g[1] for g in got} == {"ACCEPT", "DROP"}


FW4_IDIOMS = """table inet t {
 chain web {
  tcp dport 80 accept
 }
 chain input {
  type filter hook input priority filter; policy drop;
  ct state vmap { established : accept, related : accept, invalid : drop }
  meta l4proto { tcp, udp } th dport 53 accept
  iifname { "eth0", "lo" } tcp dport 22 accept
  tcp dport vmap { 80 : jump web, 81-82 : drop, 83 : accept }
 }
}
"""


def test_nft_idioms_of_fw4_and_podman_become_iptables_rules():
    """`ct state vmap { ... }` (every OpenWrt fw4 ruleset), `meta l4proto { tcp, udp } th dport
    53` (podman, many configs), interface sets and port verdict maps: one iptables rule per
    element or protocol (the elements are disjoint); the kernel decides alike."""
    kernel_or_skip()
    rs = parse_nft(FW4_IDIOMS, "fw4.nft")
    out = emit_iptables(rs)
    assert "--ctstate INVALID -j DROP" in out["ip"] and "-p udp -m udp --dport 53" in out["ip"]
    cases = []
    for src, dst in (("198.51.100.7", "192.0.2.1"), ("2001:db8:a::7", "2001:db8:f::1")):
        for proto, port in (("tcp", 53), ("udp", 53), ("tcp", 22), ("tcp", 80), ("tcp", 81),
                            ("tcp", 83), ("tcp", 84), ("udp", 54)):
            probe = {"dir": "in", "proto": proto, "src": src, "dst": dst, "sport": 40000,
                     "dport": port}
            if proto == "tcp":
                probe["flags"] = "S"
            cases.append({"name": f"{src}-{proto}{port}", "probe": probe})
        cases.append({"name": f"{src}-invalid", "probe": {
            "dir": "in", "src": src, "dst": dst, "sport": 40000, "dport": 83, "flags": "F"}})
    cases = cases_from_json(cases)
    got = _decide_alike(FW4_IDIOMS, rs, out, cases)
    assert {g[1] for g in got} == {"ACCEPT", "DROP"}


CONCAT_VMAPS = """table inet t {
 chain v4 {
  tcp dport 1 accept
 }
 chain v6 {
  tcp dport 2 accept
 }
 chain input {
  type filter hook input priority filter; policy drop;
  ip protocol tcp tcp dport 7 reject with tcp reset
  meta protocol vmap { ip : jump v4, ip6 : jump v6 }
  ip protocol . th dport vmap { tcp . 22 : accept, udp . 53 : accept, tcp . 53 : drop }
  meta l4proto . th dport vmap { tcp . 80 : accept, udp . 123 : accept, tcp . 81-82 : drop }
  ip protocol vmap { udp : accept }
  meta nfproto vmap { ipv6 : accept }
 }
}
"""


def test_concatenated_and_family_keyed_verdict_maps_become_rules_per_family():
    """`ip protocol . th dport vmap { tcp . 22 : accept, ... }` (a common idiom), `meta
    protocol vmap { ip : jump v4, ip6 : jump v6 }`: each element a rule of the family it can
    match. `ip protocol` is an IPv4 header field: the IPv6 output has none of its elements
    (it used to become `-p udp -j ACCEPT` there, accepting every IPv6 UDP packet). Two tests
    of one protocol are one -p (they were refused as two)."""
    kernel_or_skip()
    rs = parse_nft(CONCAT_VMAPS, "concat.nft")
    out = emit_iptables(rs)
    assert "-A INPUT -j v4" in out["ip"] and "-j v4" not in out["ip6"]
    assert "-A INPUT -p udp -j ACCEPT" in out["ip"] and "-p udp -j" not in out["ip6"]
    cases = []
    for src, dst in (("198.51.100.7", "192.0.2.1"), ("2001:db8:a::7", "2001:db8:f::1")):
        for proto, port in (("tcp", 1), ("tcp", 2), ("tcp", 7), ("tcp", 22), ("udp", 53),
                            ("tcp", 53), ("tcp", 80), ("udp", 123), ("tcp", 82), ("udp", 9),
                            ("tcp", 9)):
            cases.append(_in_case(src, dst, proto, port))
    got = _decide_alike(CONCAT_VMAPS, rs, out, cases_from_json(cases))
    verdicts = {g[0]: g[1] for g in got}
    assert verdicts["198.51.100.7-udp9"] == "ACCEPT" and verdicts["2001:db8:a::7-tcp9"] == "ACCEPT"
    assert verdicts["198.51.100.7-tcp9"] == "DROP" and verdicts["198.51.100.7-tcp53"] == "DROP"
    # `ip protocol tcp` and the `meta l4proto tcp` of `reject with tcp reset`: one -p tcp
    assert verdicts["198.51.100.7-tcp7"] == "REJECT" and verdicts["2001:db8:a::7-tcp7"] == "ACCEPT"


NAT_PRIORITY_0 = """table ip t {
 chain pre {
  type nat hook prerouting priority 0; policy accept;
  tcp dport 8080 dnat to 192.0.2.1:22
 }
 chain early {
  type filter hook prerouting priority %d; policy accept;
  tcp dport 22 drop
 }
 chain input {
  type filter hook input priority filter; policy drop;
  tcp dport 22 accept
 }
}
"""


def test_a_nat_chain_at_any_priority_is_iptables_nat():
    """`type nat hook prerouting priority 0` (what many hand-written rulesets say) runs where
    iptables' nat table does: nat chains run inside the NAT core's hook at -100, whatever
    their own priority (which orders them among nat chains only), so even a filter chain at
    -50 sees the packet after DNAT (nft and the simulator), and the iptables nat table means
    the same (with the filter chain in mangle, at -150)."""
    kernel_or_skip()
    cases = cases_from_json([{"name": f"tcp{p}", "probe": {
        "dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 40000, "dport": p,
        "flags": "S"}} for p in (22, 8080, 8081)])
    late = NAT_PRIORITY_0 % -50
    with KernelHarness() as h:
        h.prepare(cases)
        nft = [v.verdict for v in kernel_verdicts(("nft", late), cases, h)]
    sim = Simulator(parse_nft(late, "late.nft"), SimOptions())
    assert nft == [sim.run_case(c).verdict for c in cases] == ["DROP", "DROP", "DROP"]
    text = NAT_PRIORITY_0 % -150
    rs = parse_nft(text, "nat0.nft")
    out = emit_iptables(rs)
    assert "*nat" in out["ip"] and "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT" in out["ip"]
    got = {g[0]: g[1] for g in _decide_alike(text, rs, out, cases)}
    # 8080 passes the mangle chain, then becomes 22: accepted
    assert got == {"tcp22": "DROP", "tcp8080": "ACCEPT", "tcp8081": "DROP"}


OFF_PRIORITY = """table inet fw {
 chain mangle_pre {
  type filter hook prerouting priority mangle + 10; policy accept;
  tcp dport 23 drop
 }
 chain filter_in {
  type filter hook input priority filter + 10; policy drop;
  ct state established,related accept
  tcp dport { 22, 23 } accept
 }
}
"""


def test_firewalld_style_priorities_become_the_iptables_tables():
    """firewalld writes its base chains at `priority filter + 10`, `mangle + 10`: with no kernel
    step and no other base chain in between, they are the filter and mangle tables."""
    kernel_or_skip()
    rs = parse_nft(OFF_PRIORITY, "fw.nft")
    out = emit_iptables(rs)
    assert "*mangle" in out["ip"] and "*filter\n:INPUT DROP" in out["ip6"]
    cases = cases_from_json([{"name": f"{src}-tcp{p}", "probe": {
        "dir": "in", "src": src, "dst": dst, "sport": 40000, "dport": p, "flags": "S"}}
        for src, dst in (("198.51.100.7", "192.0.2.1"), ("2001:db8:a::7", "2001:db8:f::1"))
        for p in (22, 23, 24)])
    got = {g[0]: g[1] for g in _decide_alike(OFF_PRIORITY, rs, out, cases)}
    assert got["198.51.100.7-tcp22"] == "ACCEPT" and got["2001:db8:a::7-tcp23"] == "DROP"


FIRST_HEADER = """table ip6 t {
 chain o {
  type filter hook output priority filter; policy accept;
  ip6 nexthdr udp udp dport 9 counter
  udp dport 9 counter
 }
}
"""


def test_ip6_nexthdr_is_ipv6header_protocol_with_real_extension_headers(kernel_ok):
    """`ip6 nexthdr udp` is the first header after IPv6's, so a packet with a destination
    options header first does not match it, though its protocol is udp; fwc writes it as
    `-p udp -m ipv6header --header protocol`. The harness's packets carry no extension header:
    here the kernel itself sends one (IPV6_DSTOPTS) and both rulesets count alike."""
    import os
    import re
    import sys

    from fwc.testing import netns
    out = emit_iptables(parse_nft(FIRST_HEADER, "nh.nft"))["ip6"]
    assert "-A OUTPUT -p udp -m ipv6header --header protocol -m udp --dport 9" in out
    send = ("import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "s.sendto(b'x', ('::1', 9))\n"
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))\n"
            "s.sendto(b'x', ('::1', 9))\n")
    counts = {}
    for kind in ("nft", "iptables"):
        ns = f"fwcnh{os.getpid()}"
        netns.create(ns)
        try:
            netns.run(["ip", "link", "set", "lo", "up"], ns=ns)
            if kind == "nft":
                netns.run(["nft", "-f", "-"], ns=ns, input=FIRST_HEADER)
            else:
                netns.run(["ip6tables-restore"], ns=ns, input=out)
            netns.run([sys.executable, "-c", send], ns=ns)
            if kind == "nft":
                listing = netns.run(["nft", "list", "chain", "ip6", "t", "o"], ns=ns).stdout
                counts[kind] = [int(x) for x in re.findall(r"packets (\d+)", listing)]
            else:
                saved = netns.run(["ip6tables-save", "-c"], ns=ns).stdout
                counts[kind] = [int(x) for x in re.findall(r"^\[(\d+):\d+\] -A OUTPUT", saved,
                                                           flags=re.M)]
        finally:
            netns.delete(ns)
    assert counts["nft"] == counts["iptables"] == [1, 2], counts


SHARED_BUCKET = """table inet t {
 chain input {
  type filter hook input priority filter; policy drop;
  limit rate 1/minute burst 2 packets accept
 }
}
"""


def test_an_inet_limit_is_one_bucket_for_both_families_so_iptables_is_refused():
    """One `limit` in an inet rule: IPv4 packets empty the bucket IPv6 packets then find empty
    (iptables and ip6tables would keep a bucket each, twice the rate): refused, located."""
    kernel_or_skip()
    syn = {"dir": "in", "sport": 40000, "dport": 22, "flags": "S"}
    cases = cases_from_json([
        {"name": "v4", "setup": [dict(syn, src="198.51.100.7", dst="192.0.2.1")],
         "probe": dict(syn, src="198.51.100.7", dst="192.0.2.1", sport=40001)},
        {"name": "v6", "probe": dict(syn, src="2001:db8:a::7", dst="2001:db8:f::1")}])
    with KernelHarness() as h:
        h.prepare(cases)
        got = kernel_verdicts(("nft", SHARED_BUCKET), cases, h)
    assert [g.verdict for g in got] == ["ACCEPT", "DROP"]
    with pytest.raises(ErrorGroup, match="IPv4 and IPv6 packets share") as e:
        emit_iptables(parse_nft(SHARED_BUCKET, "b.nft"))
    assert e.value.errors[0].loc.line == 4


LIMIT_OVER = """table ip t {
 chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 22 limit rate over 1/minute burst 3 packets drop
  ip saddr { 198.51.100.0/25, 198.51.100.128/25 } tcp dport 23 limit rate over 1/minute burst 2 packets drop
 }
}
"""


def test_limit_rate_over_is_a_hashlimit_above_with_one_bucket():
    """nft `limit rate over` (xt_limit has no inversion) becomes a hashlimit without a mode,
    one bucket, --hashlimit-above; the iptables rules one nft rule became (one per prefix)
    share its bucket. The kernel decides a run of SYNs alike under both."""
    kernel_or_skip()
    rs = parse_nft(LIMIT_OVER, "over.nft")
    out = emit_iptables(rs)["ip"]
    assert out.count("--hashlimit-above 1/minute --hashlimit-burst 3") == 1
    syn = {"dir": "in", "proto": "tcp", "flags": "S", "dst": "192.0.2.1"}
    def run(port, src, n):
        pk = [dict(syn, src=src, sport=40000 + k, dport=port) for k in range(n)]
        return {"name": f"{port}-{src}-{n}", "setup": pk[:-1], "probe": pk[-1]}
    cases = cases_from_json([run(22, "198.51.100.7", 5), run(23, "198.51.100.7", 2),
                             run(23, "198.51.100.200", 2)])
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", LIMIT_OVER), cases, h)
        ipt = kernel_verdicts(("iptables", out, None), cases, h)
    got = [(v.setup_verdicts, v.verdict) for v in nft]
    assert got == [(v.setup_verdicts, v.verdict) for v in ipt]
    # the 4th SYN to 22 is over; to 23 the two prefixes' pieces share one bucket of 2
    assert [v.verdict for v in nft] == ["DROP", "ACCEPT", "DROP"], got


MANY_RANGES = """table ip t {
 chain input {
  type filter hook input priority filter; policy drop;
  tcp dport { 1-2, 4-5, 7-8, 10-11, 13-14, 16-17, 19-20, 22-23, 30, 31, 40 } accept
 }
}
"""


def test_port_sets_past_multiports_fifteen_slots_become_several_rules():
    """xt_multiport holds 15 entries and a range takes two (iptables-restore: "too many ports
    specified"): 8 ranges and 3 ports are two rules; fwc wrote them as one, which failed."""
    kernel_or_skip()
    rs = parse_nft(MANY_RANGES, "many.nft")
    out = emit_iptables(rs)
    lines = [ln for ln in out["ip"].splitlines() if ln.startswith("-A INPUT")]
    assert len(lines) == 2
    cases = cases_from_json([{"name": f"tcp{p}", "probe": {
        "dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 40000, "dport": p,
        "flags": "S"}} for p in (1, 3, 20, 23, 24, 31, 40, 41)])
    got = {g[0]: g[1] for g in _decide_alike(MANY_RANGES, rs, out, cases)}
    assert [got[f"tcp{p}"] for p in (1, 3, 20, 23, 24, 31, 40, 41)] == \
        ["ACCEPT", "DROP", "ACCEPT", "ACCEPT", "DROP", "ACCEPT", "ACCEPT", "DROP"]


NEGATED_SETS = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  ip protocol != { tcp, udp, icmp } drop
  ip saddr != { 198.51.100.0/25, 203.0.113.0/24 } tcp dport 22 drop
  tcp dport 80 iifname != { "lo", "eth0" } drop
  icmpv6 type != { echo-request, nd-neighbor-solicit, nd-neighbor-advert } drop
  meta l4proto != { tcp, udp, ipv6-icmp, icmp } counter drop
  udp dport != { 1-2, 4-5, 7-8, 10-11, 13-14, 16-17, 19-20, 22-23, 53 } drop
 }
}
"""


def test_negated_sets_become_a_chain_of_returns():
    """`ip protocol != { tcp, udp }`, `ip saddr != { a, b }`, `iifname != { ... }`,
    `icmpv6 type != { ... }` (which still needs ICMPv6) and a negated port set past one
    multiport: no iptables match tests them in one rule, so the rule jumps to a chain where
    each element returns and the rest of the rule decides."""
    kernel_or_skip()
    rs = parse_nft(NEGATED_SETS, "neg.nft")
    out = emit_iptables(rs)
    assert "-p tcp -j RETURN" in out["ip"] and "-p tcp -j RETURN" in out["ip6"]
    cases = []
    for src, dst in (("198.51.100.7", "192.0.2.1"), ("198.51.100.200", "192.0.2.1"),
                     ("2001:db8:a::7", "2001:db8:f::1")):
        v6 = ":" in src
        for proto, port in (("tcp", 22), ("tcp", 80), ("udp", 53), ("udp", 5), ("udp", 9),
                            ("sctp", 9)):
            cases.append(_in_case(src, dst, proto, port))
        for t in ((128, 129, 135) if v6 else (8, 13)):
            cases.append({"name": f"{src}-icmp{t}", "probe": {
                "dir": "in", "proto": "icmpv6" if v6 else "icmp", "src": src, "dst": dst,
                "icmp_type": t}})
    got = {g[0]: g[1] for g in _decide_alike(NEGATED_SETS, rs, out, cases_from_json(cases))}
    assert got["198.51.100.200-tcp22"] == "DROP" and got["198.51.100.7-tcp22"] == "ACCEPT"
    assert got["2001:db8:a::7-icmp129"] == "DROP" and got["2001:db8:a::7-icmp128"] == "ACCEPT"
    assert got["198.51.100.7-sctp9"] == "DROP" and got["198.51.100.7-udp5"] == "ACCEPT"
    assert got["198.51.100.7-udp9"] == "DROP"


LONG = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  udp dport 7 meta length > 1000 drop
  udp dport 8 meta length 70000-80000 drop
  udp dport 9 meta length != 70000-80000 drop
 }
}
"""


def test_a_meta_length_beyond_16_bits_becomes_a_length_iptables_loads():
    """nft's `meta length` is 32 bits, xt_length's 16: fwc wrote `--length 1001:4294967295`,
    which iptables-restore refuses."""
    kernel_or_skip()
    rs = parse_nft(LONG, "long.nft")
    out = emit_iptables(rs)
    assert "4294967295" not in out["ip"] + out["ip6"] and "65535:0" in out["ip"]
    cases = []
    for src, dst in ((C4, S4), (C6, S6)):
        for port in (7, 8, 9):
            for size in (10, 1200):
                cases.append({"name": f"{src}-{port}-{size}", "probe": {
                    "dir": "in", "proto": "udp", "src": src, "dst": dst, "sport": 5000,
                    "dport": port, "payload": "x" * size}})
    got = _decide_alike(LONG, rs, out, cases_from_json(cases))
    assert [g[1] for g in got] == ["ACCEPT", "DROP", "ACCEPT", "ACCEPT", "DROP", "DROP"] * 2


WILDCARDS = """table inet t {
 set wl { type ifname; flags interval; elements = { "wl*" } }
 chain input {
  type filter hook input priority filter; policy accept;
  iifname { "eth9", "veth*" } tcp dport 22 drop
  iifname @wl tcp dport 23 drop
  iifname != { "veth*", "lo" } tcp dport 24 drop
  tcp dport 25 iifname vmap { "wl*" : drop, "lo" : accept }
 }
}
"""


def test_interface_wildcards_in_sets_and_maps_match_by_prefix():
    """`iifname { "eth9", "veth*" }`: fwc's nft output wrote `"veth+"` (to nft a literal name)
    and the simulator compared the name whole; both are checked here on real interfaces named
    veth0 and wlx1, with the iptables translation (without the named set: no ipsets)."""
    from fwc.testing.kernel import sim_options
    kernel_or_skip()
    rs = parse_nft(WILDCARDS, "w.nft")
    no_set = WILDCARDS.replace("  iifname @wl tcp dport 23 drop\n", "")
    out = emit_iptables(parse_nft(no_set, "w.nft"))
    ifaces = ("veth0", "wlx1")
    cases = []
    for iif, (src, dst) in zip(ifaces, (("198.51.100.7", "192.0.2.1"),
                                        ("203.0.113.7", "203.0.113.1"))):
        for port in (22, 23, 24, 25, 26):
            cases.append({"name": f"{iif}-{port}", "probe": {
                "dir": "in", "iif": iif, "src": src, "dst": dst, "sport": 40000,
                "dport": port, "flags": "S"}})
    cases = cases_from_json(cases)
    with KernelHarness(ifaces=ifaces) as h:
        h.prepare(cases)
        kern = kernel_verdicts(("nft", WILDCARDS), cases, h)
        ours = kernel_verdicts(("nft", emit_nft(rs)), cases, h)
        ipt = kernel_verdicts(("iptables", out.get("ip"), out.get("ip6")), cases, h)
    sim = Simulator(rs, sim_options(ifaces))
    got = [(c.name, a.verdict, b.verdict, sim.run_case(c).verdict) for c, a, b in
           zip(cases, kern, ours)]
    assert [g for g in got if len(set(g[1:])) != 1] == []
    assert [g[1] for g in got] == ["DROP", "ACCEPT", "ACCEPT", "ACCEPT", "ACCEPT",
                                   "ACCEPT", "DROP", "DROP", "DROP", "ACCEPT"]
    # the iptables translation has no port 23 rule
    assert [d.verdict for d in ipt] == [g[1] if not g[0].endswith("-23") else "ACCEPT"
                                        for g in got]


ONE_ELEMENT = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 22 tcp flags { syn } drop
  tcp dport 23 tcp flags == { syn } drop
 }
}
"""


def test_a_one_element_set_of_tcp_flags_is_the_implicit_bit_test():
    """nft 1.0.6 turns `tcp flags { syn }` into `tcp flags & syn != 0` (a SYN-ACK matches),
    while `== { syn }` compares the whole value; fwc read both as the latter."""
    kernel_or_skip()
    rs = parse_nft(ONE_ELEMENT, "one.nft")
    cases = cases_from_json([{"name": f"{port}-{flags}", "probe": {
        "dir": "in", "src": C4, "dst": S4, "sport": 40000, "dport": port, "flags": flags}}
        for port in (22, 23) for flags in ("S", "SA", "A")])
    with KernelHarness() as h:
        h.prepare(cases)
        kern = kernel_verdicts(("nft", ONE_ELEMENT), cases, h)
        ours = kernel_verdicts(("nft", emit_nft(rs)), cases, h)
    sim = Simulator(rs, SimOptions())
    want = ["DROP", "DROP", "ACCEPT", "DROP", "ACCEPT", "ACCEPT"]
    assert [r.verdict for r in kern] == want
    assert [r.verdict for r in ours] == want
    assert [sim.run_case(c).verdict for c in cases] == want
    # the iptables translation of the implicit form: a SYN-ACK has SYN too
    assert "--tcp-flags SYN SYN" in emit_iptables(parse_nft(
        ONE_ELEMENT.replace("  tcp dport 23 tcp flags == { syn } drop\n", ""), "one.nft"))["ip"]


NAT_MAPS = """table inet t {
 chain pre {
  type nat hook prerouting priority dstnat; policy accept;
  dnat ip to ip daddr . tcp dport map { 192.0.2.1 . 8080 : 192.0.2.1 . 22, 192.0.2.1 . 8443 : 192.0.2.1 . 443 }
  meta l4proto tcp redirect to :tcp dport map { 9022 : 22, 9443 : 443 }
 }
 chain input {
  type filter hook input priority filter; policy drop;
  tcp dport { 22, 443 } accept
 }
}
"""


def test_nat_maps_become_one_nat_rule_per_element():
    """`dnat ip to KEY map { ... }` and `redirect to :KEY map { ... }`: one DNAT/REDIRECT rule
    per element, which is exact (elements are disjoint; no element: the rule goes on), and
    the IPv6 half of the inet table gets no DNAT (its packets find no IPv4 element)."""
    kernel_or_skip()
    rs = parse_nft(NAT_MAPS, "natmaps.nft")
    out = emit_iptables(rs)
    assert out["ip"].count("-j DNAT") == 2 and out["ip"].count("-j REDIRECT") == 2
    assert "DNAT" not in out["ip6"] and out["ip6"].count("-j REDIRECT") == 2
    cases = cases_from_json([_in_case(src, dst, "tcp", p)
                             for src, dst in ((C4, S4), (C6, S6))
                             for p in (22, 443, 8080, 8443, 8081, 9022, 9443, 9444)])
    got = {g[0]: g[1] for g in _decide_alike(NAT_MAPS, rs, out, cases)}
    assert [p for p in (22, 443, 8080, 8443, 8081, 9022, 9443, 9444)
            if got[f"{C4}-tcp{p}"] == "ACCEPT"] == [22, 443, 8080, 8443, 9022, 9443]
    assert [p for p in (22, 443, 8080, 8443, 8081, 9022, 9443, 9444)
            if got[f"{C6}-tcp{p}"] == "ACCEPT"] == [22, 443, 9022, 9443]


NAMED_NAT_MAP = """table ip t {
 map portfw {
  type ipv4_addr . inet_service : ipv4_addr . inet_service
  elements = { 192.0.2.1 . 8080 : 192.0.2.1 . 22, 192.0.2.1 . 8443 : 192.0.2.1 . 443 }
 }
 chain pre {
  type nat hook prerouting priority dstnat; policy accept;
  dnat ip addr . port to ip daddr . tcp dport map @portfw
 }
 chain input {
  type filter hook input priority filter; policy drop;
  tcp dport { 22, 443 } accept
 }
}
"""


def test_a_named_map_of_address_and_port_is_a_port_forward():
    """A named map with concatenated values (`: ipv4_addr . inet_service`): the kernel, fwc's
    iptables translation (one DNAT per element) and the simulator forward alike."""
    kernel_or_skip()
    rs = parse_nft(NAMED_NAT_MAP, "portfw.nft")
    out = emit_iptables(rs)
    assert out["ip"].count("-j DNAT") == 2
    ports = (22, 443, 8080, 8443, 8081)
    cases = cases_from_json([_in_case(C4, S4, "tcp", p) for p in ports])
    got = {g[0]: g[1] for g in _decide_alike(NAMED_NAT_MAP, rs, out, cases)}
    assert [p for p in ports if got[f"{C4}-tcp{p}"] == "ACCEPT"] == [22, 443, 8080, 8443]
    # fwc's own nft text of it loads and decides the same
    again = emit_nft(rs)
    with KernelHarness() as h:
        h.prepare(cases)
        assert [v.verdict for v in kernel_verdicts(("nft", again), cases, h)] == \
            [got[c.name] for c in cases]


CONCAT_SETS = """table inet t {
 set pairs {
  type ipv4_addr . inet_service
  elements = { 198.51.100.7 . 22, 198.51.100.8 . 80 }
 }
 chain input {
  type filter hook input priority filter; policy accept;
  ip saddr . tcp dport @pairs accept
  ip saddr . tcp dport { 198.51.100.7 . 443, 198.51.100.0/24 . 8443 } accept
  ip saddr . tcp dport != @pairs tcp dport { 22, 80, 81 } drop
  ip saddr . tcp dport { 198.51.100.7 . 25 } reject
 }
}
"""


def test_concatenated_sets_become_one_rule_per_element():
    """A named or anonymous concatenated set: one iptables rule per element (elements that
    may hold for one packet are refused); negated, a chain of returns behind the keys' own
    protocol test (nft tests TCP before the lookup, so a UDP packet does not match `!=`)."""
    kernel_or_skip()
    rs = parse_nft(CONCAT_SETS, "concat.nft")
    out = emit_iptables(rs)
    assert "-s 198.51.100.0/24 -m tcp --dport 8443 -j ACCEPT" in out["ip"]
    assert "-j RETURN" in out["ip"] and "198.51.100" not in out["ip6"]
    cases = [_in_case(src, S4, proto, p) for src in ("198.51.100.7", "198.51.100.8", "198.51.100.9")
             for proto in ("tcp", "udp") for p in (22, 25, 80, 81, 443, 8443)]
    cases += [_in_case(C6, S6, "tcp", p) for p in (22, 80)]
    got = {g[0]: g[1] for g in _decide_alike(CONCAT_SETS, rs, out, cases_from_json(cases))}
    assert got["198.51.100.7-tcp22"] == "ACCEPT" and got["198.51.100.9-tcp22"] == "DROP"
    assert got["198.51.100.9-udp22"] == "ACCEPT" and got["198.51.100.7-tcp25"] == "REJECT"
    assert got["198.51.100.9-tcp8443"] == "ACCEPT"
    assert got[f"{C6}-tcp22"] == "ACCEPT"  # (an IPv6 packet has no `ip saddr`: no rule holds)


def test_concatenated_set_elements_that_overlap_are_refused():
    text = CONCAT_SETS.replace("198.51.100.7 . 443, 198.51.100.0/24 . 8443",
                               "198.51.100.7 . 8443, 198.51.100.0/24 . 8443")
    with pytest.raises(ErrorGroup, match="ip saddr . tcp dport"):
        emit_iptables(parse_nft(text, "overlap.nft"))


NAMED_LIMIT = """table ip t {
 limit shared { rate 1/minute burst 2 packets }
 chain input {
  type filter hook input priority filter; policy drop;
  udp dport 5001 limit name "shared" accept
  udp dport 5002 limit name "shared" accept
  udp dport 5003 limit rate 1/minute burst 2 packets accept
 }
}
"""


def test_a_named_limit_is_one_bucket_for_every_rule_naming_it():
    """`limit name "shared"` in two rules: one token bucket (burst 2), so the first rule's two
    packets leave none for the second; iptables' hashlimit of one name (no mode) is that one
    bucket too, while a plain limit keeps its own."""
    kernel_or_skip()
    rs = parse_nft(NAMED_LIMIT, "limit.nft")
    out = emit_iptables(rs)
    assert out["ip"].count("--hashlimit-name shared") == 2
    assert 'limit name "shared"' in emit_nft(rs)
    one = {"dir": "in", "proto": "udp", "src": C4, "dst": S4, "sport": 40000}
    cases = cases_from_json([{"name": "shared", "setup": [
        dict(one, dport=5001), dict(one, dport=5001, sport=40001), dict(one, dport=5002, sport=40002)],
        "probe": dict(one, dport=5003, sport=40003)}])
    with KernelHarness() as h:
        h.prepare(cases)
        nft = kernel_verdicts(("nft", NAMED_LIMIT), cases, h)
        ipt = kernel_verdicts(("iptables", out["ip"], None), cases, h)
    got = [(list(r.setup_verdicts), r.verdict) for r in (nft[0], ipt[0])]
    assert got[0] == got[1] == (["ACCEPT", "ACCEPT", "DROP"], "ACCEPT")
