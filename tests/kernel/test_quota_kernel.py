"""iptables -m quota (xt_quota) and its nft translation (`quota [over] N bytes`): the
simulator's byte counter agrees with the kernel, one case per fresh load (the kernel's counter
lives as long as the rule; the simulator's starts at 0 in each case)."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

# a UDP packet with a 12-byte payload is 20 + 8 + 12 = 40 bytes at the hook
RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p udp -m udp --dport 7000 -m quota --quota 100 -j ACCEPT
-A INPUT -p udp -m udp --dport 7001 -m quota ! --quota 80 -j DROP
-A INPUT -p udp -m udp --dport 7001 -j ACCEPT
COMMIT
"""


def _pkt(dport, sport, payload=12):
    return {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "proto": "udp",
            "sport": sport, "dport": dport, "iif": "eth0", "payload": "x" * payload}


def _cases():
    out = []
    for port in (7000, 7001):
        for n in range(1, 5):  # n packets of 40 bytes: 40, 80, 120, 160 in total
            pk = [_pkt(port, 5000 + i) for i in range(n)]
            out.append({"name": f"p{port}-{n}", "setup": pk[:-1], "probe": pk[-1]})
    out.append({"name": "p7000-exact", "setup": [_pkt(7000, 5000, 32)],  # 60 + 40 = 100
                "probe": _pkt(7000, 5001)})
    out.append({"name": "p7000-one-over", "setup": [_pkt(7000, 5000, 33)],  # 61 + 40 = 101
                "probe": _pkt(7000, 5001)})
    return cases_from_json(out)


def test_quota_agrees_with_kernel_iptables_and_nft(kernel):
    rs = parse_iptables_save(RULES, "quota.rules")
    sim = Simulator(rs, sim_options())
    cases = _cases()
    expected = {c.name: sim.run_case(c) for c in cases}
    v = {k: r.verdict for k, r in expected.items()}
    assert (v["p7000-2"], v["p7000-3"], v["p7000-exact"], v["p7000-one-over"]) == \
        ("ACCEPT", "DROP", "ACCEPT", "DROP")
    assert (v["p7001-2"], v["p7001-3"]) == ("ACCEPT", "DROP")
    kernel.prepare(cases)
    for loader in (("iptables", RULES), ("nft", emit_nft(rs))):
        for c in cases:  # a fresh counter for each case
            (got,) = kernel_verdicts(loader, [c], kernel)
            want = expected[c.name]
            assert (got.verdict, got.setup_verdicts) == (want.verdict, want.setup_verdicts), \
                (loader[0], c.name)


NFT_RULES = """table ip t {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tudp dport 7000 quota 100 bytes used 30 bytes accept
\t\tudp dport 7001 quota over 1 kbytes drop
\t\tudp dport 7001 accept
\t}
}
"""


def test_nft_quota_with_used_bytes_agrees_with_kernel(kernel):
    """`quota 100 bytes used 30 bytes` is a fresh quota of 70: read so, and written so in nft
    and iptables, it gives the original's verdicts."""
    from fwc.backends.iptables import emit_iptables
    from fwc.frontends import parse_text
    rs = parse_text(NFT_RULES, "quota.nft", "nft")
    sim = Simulator(rs, sim_options())
    out = []
    for n in range(1, 3):  # 40-byte packets: 40 fits 70, 80 does not
        pk = [_pkt(7000, 5000 + i) for i in range(n)]
        out.append({"name": f"used-{n}", "setup": pk[:-1], "probe": pk[-1]})
    for n in (25, 26, 27):  # 1024 bytes: 25 x 40 = 1000 within, 26 x 40 = 1040 over
        pk = [_pkt(7001, 6000 + i) for i in range(n)]
        out.append({"name": f"over-{n}", "setup": pk[:-1], "probe": pk[-1]})
    cases = cases_from_json(out)
    expected = {c.name: sim.run_case(c) for c in cases}
    assert [expected[k].verdict for k in ("used-1", "used-2", "over-25", "over-26")] == \
        ["ACCEPT", "DROP", "ACCEPT", "DROP"]
    kernel.prepare(cases)
    for loader in (("nft", NFT_RULES), ("nft", emit_nft(rs)),
                   ("iptables", emit_iptables(rs)["ip"])):
        for c in cases:
            (got,) = kernel_verdicts(loader, [c], kernel)
            assert got.verdict == expected[c.name].verdict, (loader[0], c.name)
