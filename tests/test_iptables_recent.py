"""-m recent: parsed with the kernel's load-time checks, written back by the iptables backend,
refused (located) by the nft backend, simulated per case."""

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.kernel import sim_options

UFW = ("-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update "
       "--seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j DROP")


def _save(rule: str, fam: str = "ip") -> str:
    return f"*filter\n:INPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n"


def _recent(rule: str, fam: str = "ip") -> ir.Recent:
    rs = parse_iptables_save(_save(rule), "t.rules", family=fam)
    (r,) = [r for t in rs.tables for c in t.chains for r in c.rules]
    (m,) = [m for m in r.matches if isinstance(m, ir.Recent)]
    return m


def test_ufw_limit_rule():
    m = _recent(UFW)
    assert (m.command, m.name, m.seconds, m.hitcount, m.side, m.mask, m.negate) == \
        ("update", "DEFAULT", 30, 6, "saddr", None, False)


def test_negation_mask_and_side():
    m = _recent("-A INPUT -m recent ! --rcheck --name knock --mask 255.255.255.0 --rdest")
    assert (m.command, m.negate, m.side, m.mask) == ("rcheck", True, "daddr", 0xFFFFFF00)
    m6 = _recent("-A INPUT -m recent --set --mask ffff:ffff:: --name v6", "ip6")
    assert m6.mask == 0xFFFFFFFF << 96


@pytest.mark.parametrize("rule,why", [
    ("-A INPUT -m recent --name x", "needs one of"),
    ("-A INPUT -m recent --set --rcheck", "only one of"),
    ("-A INPUT -m recent --set --seconds 5", "cannot take --seconds"),
    ("-A INPUT -m recent --remove --hitcount 2", "cannot take --hitcount"),
    ("-A INPUT -m recent --rcheck --reap", "--reap needs --seconds"),
    ("-A INPUT -m recent --rcheck --hitcount 256", "hit count"),
    ("-A INPUT -m recent --set --name a/b", "bad list name"),
    ("-A INPUT -m recent --set --mask 300.0.0.0", "bad --mask"),
])
def test_kernel_load_checks_are_located_errors(rule, why):
    with pytest.raises((FwcError, ErrorGroup)) as e:
        parse_iptables_save(_save(rule), "t.rules")
    assert why in str(e.value) and "t.rules:3:" in str(e.value)


@pytest.mark.parametrize("rule", [
    UFW,
    "-A INPUT -p udp -m recent --set --name knock --mask 255.255.255.0 --rsource -j DROP",
    "-A INPUT -m recent ! --update --seconds 10 --reap --hitcount 3 --rttl --name t --rdest",
    "-A INPUT -m recent --remove --name x",
])
def test_round_trip_through_iptables(rule):
    rs = parse_iptables_save(_save(rule), "t.rules")
    again = parse_iptables_save(emit_iptables(rs)["ip"], "again.rules")
    assert _recent(rule) == [m for t in again.tables for c in t.chains for r in c.rules
                             for m in r.matches if isinstance(m, ir.Recent)][0]


def test_nft_backend_refuses_with_the_rule_location():
    rs = parse_iptables_save(_save(UFW), "t.rules")
    with pytest.raises((FwcError, ErrorGroup)) as e:
        emit_nft(rs)
    assert "t.rules:3:" in str(e.value) and "recent" in str(e.value)


def test_simulated_lists_are_per_case_and_count_hits():
    text = _save("-A INPUT -p udp -m recent --set --name n\n"
                 "-A INPUT -p udp -m recent --rcheck --hitcount 3 --name n -j DROP")
    sim = Simulator(parse_iptables_save(text, "t.rules"), sim_options())
    pkt = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "proto": "udp",
           "sport": 1, "dport": 2, "iif": "eth0"}
    cases = cases_from_json([{"name": "third", "setup": [pkt, pkt], "probe": pkt},
                             {"name": "first-again", "probe": pkt}])
    assert [sim.run_case(c).verdict for c in cases] == ["DROP", "ACCEPT"]
