"""iptables -m recent (xt_recent): the simulator's lists, hit counts and LRU agree with the kernel
running the same iptables-restore text; nft output is refused with a located error."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import Simulator
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

# ufw's "limit ssh" rules, plus rcheck/remove/rdest/mask/negation on other lists
RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource
-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j REJECT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p udp -m udp --dport 1000 -m recent --set --name knock --mask 255.255.255.0 --rsource -j DROP
-A INPUT -p udp -m udp --dport 1001 -m recent --remove --name knock --mask 255.255.255.0 --rsource -j DROP
-A INPUT -p tcp -m tcp --dport 2222 -m recent --rcheck --seconds 60 --name knock --mask 255.255.255.0 --rsource -j ACCEPT
-A INPUT -p tcp -m tcp --dport 2223 -m recent ! --rcheck --name knock --mask 255.255.255.0 --rsource -j ACCEPT
-A INPUT -p udp -m udp --dport 53 -m recent --update --hitcount 2 --name dst --rdest -j REJECT
-A INPUT -p udp -m udp --dport 53 -m recent ! --update --hitcount 2 --name dst --rdest -j ACCEPT
COMMIT
"""

A, B = "198.51.100.7", "198.51.100.9"  # one /24: the knock list's mask makes them one entry


def _pkt(src, proto, dport, sport, flags=None):
    p = {"dir": "in", "src": src, "dst": "192.0.2.1", "proto": proto, "sport": sport,
         "dport": dport, "iif": "eth0"}
    if flags:
        p["flags"] = flags
    return p


def _cases():
    out = []
    for n in range(1, 7):  # n SYNs to port 22 from one source: the 4th and later are rejected
        syns = [_pkt(A, "tcp", 22, 40000 + i, "S") for i in range(n)]
        out.append({"name": f"ssh{n}", "setup": syns[:-1], "probe": syns[-1]})
    knock = _pkt(A, "udp", 1000, 5000)
    unknock = _pkt(B, "udp", 1001, 5000)
    for name, setup, port in (("open", [knock], 2222), ("closed", [], 2222),
                              ("masked", [_pkt(B, "udp", 1000, 5000)], 2222),
                              ("removed", [knock, unknock], 2222),
                              ("not-listed", [], 2223), ("listed", [knock], 2223)):
        out.append({"name": f"knock-{name}", "setup": setup, "probe": _pkt(A, "tcp", port, 41000, "S")})
    for n in range(1, 5):  # the ! --update branch updates exactly when the list says "not yet"
        dns = [_pkt(A, "udp", 53, 6000 + i) for i in range(n)]
        out.append({"name": f"dns{n}", "setup": dns[:-1], "probe": dns[-1]})
    return cases_from_json(out)


def test_recent_lists_agree_with_kernel(kernel):
    cases = _cases()
    rs = parse_iptables_save(RULES, "recent.rules")
    sim = Simulator(rs, sim_options())
    expected = [sim.run_case(c) for c in cases]
    # the simulator's own reading first: it must not be trivially all-accept
    verdicts = {c.name: r.verdict for c, r in zip(cases, expected)}
    assert verdicts["ssh3"] == "ACCEPT" and verdicts["ssh4"] == "REJECT"
    assert verdicts["knock-open"] == "ACCEPT" and verdicts["knock-removed"] == "DROP"
    kernel.prepare(cases)
    got = kernel_verdicts(("iptables", RULES), cases, kernel)
    for c, want, have in zip(cases, expected, got):
        assert (have.verdict, have.setup_verdicts) == (want.verdict, want.setup_verdicts), c.name
