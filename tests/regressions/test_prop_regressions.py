"""Shrunk failures of the differential properties (tests/test_properties.py,
tests/kernel/test_properties_kernel.py), kept as explicit tests.

Each regression is a small iptables-restore ruleset and a few cases.  `truth` is what the real
kernel did (measured with the kernel harness when the regression was recorded; the kernel test
below re-measures it).  Every simulator leg - the IR, its iptables round trip and its nft round
trip - must give exactly that.
"""

from __future__ import annotations

import attrs
import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.simulate import simulate
from fwc.errors import ErrorGroup
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.kernel import sim_options
from fwc.testing.strategies import iptables_leg, kernel_results, nft_leg, outcome


@attrs.frozen
class Regression:
    name: str
    v4: str | None
    v6: str | None
    cases: tuple  # case dicts (fwc/packet.py JSON form)
    truth: tuple  # (verdict, ct_state) per case, as the kernel gave them

    def ruleset(self) -> ir.Ruleset:
        tables = ()
        if self.v4:
            tables += parse_iptables_save(self.v4, f"{self.name}.v4", "ip").tables
        if self.v6:
            tables += parse_iptables_save(self.v6, f"{self.name}.v6", "ip6").tables
        return ir.Ruleset(tables)


def filter_(*rules: str, policies=("ACCEPT", "ACCEPT", "ACCEPT")) -> str:
    chains = "".join(f":{c} {p} [0:0]\n" for c, p in zip(("INPUT", "FORWARD", "OUTPUT"), policies))
    return "*filter\n" + chains + "".join(r + "\n" for r in rules) + "COMMIT\n"


IN4 = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "iif": "eth0"}
IN6 = {"dir": "in", "src": "2001:db8:a::7", "dst": "2001:db8:f::1", "iif": "eth0"}
FWD4 = {"dir": "fwd", "src": "198.51.100.7", "dst": "203.0.113.9", "iif": "eth0", "oif": "eth1"}
OUT4 = {"dir": "out", "src": "192.0.2.1", "dst": "198.51.100.7", "oif": "eth0"}


def probe(base, **kw) -> dict:
    return {"probe": dict(base, **kw)}


REGRESSIONS = [
    # netfilter never answers an ICMP error with an ICMP error, nor a RST with a RST: the
    # REJECT rule drops the packet silently (the simulator said REJECT)
    Regression(
        "reject-of-icmp-error-or-rst",
        filter_("-A INPUT -j REJECT", "-A FORWARD -j REJECT --reject-with icmp-admin-prohibited",
                "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset"),
        filter_("-A INPUT -j REJECT"),
        (probe(IN4, proto=1, icmp_type=3, icmp_code=3), probe(FWD4, proto=1, icmp_type=11),
         probe(IN4, proto=1, icmp_type=8), probe(IN6, proto=58, icmp_type=1, icmp_code=4),
         probe(OUT4, flags="R"), probe(OUT4, flags="S")),
        (("DROP", "INVALID"), ("DROP", "INVALID"), ("REJECT", "NEW"), ("DROP", "INVALID"),
         ("DROP", "INVALID"), ("REJECT", "NEW"))),
    # a packet without conntrack entry (INVALID) matches no connmark test, negated or not
    Regression(
        "negated-connmark-without-conntrack",
        filter_("-A INPUT -m connmark ! --mark 0x0 -j DROP"), None,
        (probe(IN4, flags="R"), probe(IN4, flags="S")),
        (("ACCEPT", "INVALID"), ("ACCEPT", "NEW"))),
    # the nft leg: `ip frag-off & 0x1fff != 0` (iptables -f) must still be simulated
    Regression(
        "fragment-through-nft",
        filter_("-A INPUT -f -j DROP", "-A INPUT ! -f -p udp -j REJECT"), None,
        (probe(IN4, proto="udp"), probe(IN4, flags="S")),
        (("REJECT", "NEW"), ("ACCEPT", "NEW"))),
    # the nft leg: ip6 --length becomes `ip6 length` (payload length) and must be simulated
    Regression(
        "ip6-length-through-nft",
        None, filter_("-A INPUT -p tcp -m length --length 60:68 -j DROP"),
        (probe(IN6, flags="S"), probe(IN6, flags="S", payload="x" * 40)),
        (("DROP", "NEW"), ("ACCEPT", "NEW"))),
    # the nft leg: `ct status ! expected,assured` (! --ctstatus EXPECTED,ASSURED) must be read
    # back as a negated CtStatus (nft's `!` is the bit test (status & mask) == 0)
    Regression(
        "negated-ctstatus-list-through-nft",
        filter_("-A INPUT -m conntrack ! --ctstatus EXPECTED,ASSURED -j DROP"), None,
        (probe(IN4, flags="S"), probe(IN4, flags="R")),
        (("DROP", "NEW"), ("ACCEPT", "INVALID"))),
]
# the nft leg: -m pkttype becomes `meta pkttype` and must be simulated
REGRESSIONS.append(Regression(
    "pkttype-through-nft",
    filter_("-A INPUT -m pkttype --pkt-type multicast -j DROP",
            "-A INPUT -p udp -m pkttype --pkt-type unicast -j REJECT",
            "-A OUTPUT -m pkttype ! --pkt-type unicast -j DROP"), None,
    (probe(IN4, proto="udp"), probe(IN4, flags="S"), probe(OUT4, flags="S")),
    (("REJECT", "NEW"), ("ACCEPT", "NEW"), ("ACCEPT", "NEW"))))
# nft 1.0.6 merges `tcp sport != 53 tcp dport != 53` into ONE 32-bit compare
# (sport . dport) != (53 . 53): a packet with only one port 53 then matches.  iptables'
# `! --ports 53` and `! --sport 53 ! --dport 53` both mean: neither port is 53.
REGRESSIONS.append(Regression(
    "nft-merges-adjacent-negated-ports",
    filter_("-A INPUT -p tcp -m multiport ! --ports 53 -j DROP",
            "-A OUTPUT -p tcp -m tcp ! --sport 53 -m tcp ! --dport 53 -j DROP"), None,
    (probe(IN4, sport=53, dport=80), probe(IN4, sport=40000, dport=80),
     probe(OUT4, sport=53, dport=80), probe(OUT4, sport=40000, dport=80)),
    (("ACCEPT", "NEW"), ("DROP", "NEW"), ("ACCEPT", "NEW"), ("DROP", "NEW"))))
# the same nft 1.0.6 merge for `ip protocol != udp ip ttl != 64` (adjacent header bytes 8-9):
# one 16-bit `!=`, so a TCP packet with ttl 64 matched
REGRESSIONS.append(Regression(
    "nft-merges-negated-protocol-and-ttl",
    filter_("-A OUTPUT ! -p udp -m ttl ! --ttl-eq 64 -j ACCEPT",
            policies=("ACCEPT", "ACCEPT", "DROP")), None,
    (probe(OUT4, flags="S"), probe(OUT4, proto="udp")),
    (("DROP", "NEW"), ("DROP", "NEW"))))
# ... also with another match between the two (the long soak, 2026-12-03): nft 1.0.6 merges
# `ip protocol != udp ct direction original ip ttl != 63` across the ct match
REGRESSIONS.append(Regression(
    "nft-merges-negated-protocol-and-ttl-across-a-ct-match",
    filter_("-A FORWARD -m connlabel --label 0 -j ACCEPT",
            "-A FORWARD ! -p udp -m conntrack --ctdir ORIGINAL -m ttl ! --ttl-eq 63 -j DROP"),
    None, (probe(FWD4, sport=40000, dport=22, flags="S"), probe(FWD4, proto="udp")),
    (("ACCEPT", "NEW"), ("ACCEPT", "NEW"))))
# multiport --ports (either port) as one concatenated lookup { 0-65535 . R, R . 0-65535 }:
# the kernel refuses the overlapping intervals ("File exists")
REGRESSIONS.append(Regression(
    "nft-ports-either-as-overlapping-concatenation",
    filter_("-A INPUT -p tcp -m multiport --ports 1024:65535 -j DROP"), None,
    (probe(IN4, sport=40000, dport=80), probe(IN4, sport=53, dport=80)),
    (("DROP", "NEW"), ("ACCEPT", "NEW"))))
# an ICMP error's length includes the datagram it quotes (IP header + 8 bytes): 56 bytes for a
# quoted UDP packet over IPv4, so the raw-table notrack below applies (the simulator said 28)
REGRESSIONS.append(Regression(
    "length-of-an-icmp-error",
    "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A OUTPUT -m length --length 41:61 -j CT --notrack\nCOMMIT\n", None,
    ({"setup": [dict(IN4, proto="udp", sport=50001, dport=443)],
      "probe": dict(OUT4, proto=1, icmp_type=3, icmp_code=1, quote=0)},
     probe(OUT4, proto=1, icmp_type=8)),
    (("ACCEPT", "UNTRACKED"), ("ACCEPT", "NEW"))))
# a forwarded packet's ttl / hop limit is decremented before the FORWARD hook
REGRESSIONS.append(Regression(
    "ttl-in-forward",
    filter_("-A FORWARD -m ttl --ttl-eq 63 -j ACCEPT", policies=("ACCEPT", "DROP", "ACCEPT")),
    filter_("-A FORWARD -m hl --hl-eq 63 -j ACCEPT", policies=("ACCEPT", "DROP", "ACCEPT")),
    (probe(FWD4, flags="S"),
     probe(dict(FWD4, src="2001:db8:a::7", dst="2001:db8:b::9"), flags="S")),
    (("ACCEPT", "NEW"), ("ACCEPT", "NEW"))))
# raw: after `-j CT --notrack` the packet's state already reads UNTRACKED (not INVALID)
REGRESSIONS.append(Regression(
    "state-after-notrack-in-raw",
    "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j CT --notrack\n"
    "-A PREROUTING -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n", None,
    (probe(IN4, proto="udp"),),
    (("ACCEPT", "UNTRACKED"),)))
# the nft leg: `ct status ! confirmed` (one bit, with `!`) is the bit test (status & bit) == 0,
# not a compare of the whole status word
REGRESSIONS.append(Regression(
    "negated-single-ctstatus-through-nft",
    None, filter_("-A OUTPUT -m conntrack ! --ctstatus CONFIRMED -j ACCEPT",
                  policies=("ACCEPT", "ACCEPT", "DROP")),
    ({"setup": [dict(IN6, proto="udp", sport=65535, dport=80)],
      "probe": {"dir": "out", "src": "2001:db8:f::1", "dst": "2001:db8:a::7", "oif": "eth0",
                "proto": "udp", "sport": 80, "dport": 65535}},
     {"probe": {"dir": "out", "src": "2001:db8:f::1", "dst": "2001:db8:a::7", "oif": "eth0",
                "proto": "udp", "sport": 80, "dport": 65535}}),
    (("DROP", "ESTABLISHED"), ("ACCEPT", "NEW"))))
# the same question for the other conntrack tests: without an entry they never match
REGRESSIONS.append(Regression(
    "negated-conntrack-tests-without-conntrack",
    filter_("-A INPUT -m conntrack ! --ctdir REPLY -j DROP",
            "-A OUTPUT -m conntrack ! --ctproto 17 -j DROP",
            "-A FORWARD -m conntrack ! --ctexpire 0:10 -j DROP"), None,
    (probe(IN4, flags="R"), probe(IN4, flags="S"), probe(OUT4, flags="R"), probe(OUT4, flags="S"),
     probe(FWD4, flags="R"), probe(FWD4, flags="S")),
    # the last: a new entry is unconfirmed in FORWARD, and its expiration reads 0 (xt_conntrack
    # and nft `ct expiration` alike), so `! --ctexpire 0:10` does not match
    (("ACCEPT", "INVALID"), ("DROP", "NEW"), ("ACCEPT", "INVALID"), ("DROP", "NEW"),
     ("ACCEPT", "INVALID"), ("ACCEPT", "NEW"))))
IDS = [r.name for r in REGRESSIONS]


@pytest.mark.parametrize("leg", ["ir", "iptables", "nft"])
@pytest.mark.parametrize("reg", REGRESSIONS, ids=IDS)
def test_simulator_gives_what_the_kernel_did(reg, leg):
    rs = reg.ruleset()
    rs = {"ir": rs, "iptables": iptables_leg(rs), "nft": nft_leg(rs)}[leg]
    cases = cases_from_json(list(reg.cases), reg.name)
    got = [(r.verdict, r.ct_state) for r in simulate(rs, cases, sim_options())]
    assert got == list(reg.truth)


@pytest.mark.kernel
@pytest.mark.parametrize("reg", REGRESSIONS, ids=IDS)
def test_kernel_still_does_that(reg, kernel_module):
    cases = cases_from_json(list(reg.cases), reg.name)
    results = kernel_results(reg.ruleset(), cases, kernel_module)
    for leg in ("kernel-iptables", "kernel-nft"):
        assert [outcome(r)[:2] for r in results[leg]] == list(reg.truth), leg


def test_negated_limit_is_refused_by_the_iptables_backend():
    # xt_limit cannot be inverted: iptables-restore refused the `! --limit` fwc used to write
    rule = ir.Rule((ir.Limit(5, "second", 5, negate=True),), (), ir.Accept())
    rs = ir.Ruleset((ir.Table("ip", "filter", (
        ir.Chain("INPUT", (rule,), ir.iptables_base_hook("filter", "INPUT")),)),))
    with pytest.raises(ErrorGroup, match="negated limit"):
        emit_iptables(rs)


def test_nft_mark_expression_with_and_then_or_is_read():
    # `meta mark set meta mark and 0xfffffffe or 0x1` (the nft backend's MARK --set-xmark 1/1)
    rs = parse_nft("table ip t { chain c { meta mark set meta mark and 0xfffffffe or 0x1; } }")
    assert rs.tables[0].chains[0].rules[0].statements == (ir.SetMark("meta", 1, 1),)
