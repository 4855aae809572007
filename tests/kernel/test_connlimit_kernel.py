"""iptables -m connlimit and nft `ct count` (nf_conncount): the simulator's per-key connection
lists agree with the kernel running the iptables-restore text and fwc's nft translation of it:
counting per masked source and destination, a connection counted once however many of its
packets reach the rule, rejected (never confirmed) connections and closed TCP ones leaving the
count, UDP flows, --connlimit-upto and a bare nft `ct count`."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.frontends import parse_text
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -m connlimit --connlimit-above 2 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with tcp-reset
-A INPUT -p tcp -m tcp --dport 25 -m connlimit --connlimit-above 1 --connlimit-mask 24 --connlimit-saddr -j DROP
-A INPUT -p udp -m udp --dport 53 -m connlimit --connlimit-upto 1 --connlimit-mask 32 --connlimit-daddr -j ACCEPT
-A INPUT -p udp -m udp --dport 53 -j DROP
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22,25 -j ACCEPT
COMMIT
"""

NFT_CT_COUNT = """table ip t {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\ttcp dport 80 ct count over 1 drop
\t\tct state established,related accept
\t\ttcp dport 80 accept
\t}
}
"""

A, A2, B = "198.51.100.7", "198.51.100.9", "203.0.113.5"  # A and A2: one /24


def _pkt(src, proto, dport, sport, flags=None, d="in"):
    p = {"dir": d, "src": src, "dst": "192.0.2.1", "proto": proto, "sport": sport,
         "dport": dport, "iif": "eth0"}
    if d == "out":
        p = {"dir": "out", "src": "192.0.2.1", "dst": src, "proto": proto, "sport": dport,
             "dport": sport, "oif": "eth0"}
    if flags:
        p["flags"] = flags
    return p


def _cases():
    out = []
    for n in range(1, 5):  # the third SYN from one source is over the limit of 2
        syns = [_pkt(A, "tcp", 22, 40000 + i, "S") for i in range(n)]
        out.append({"name": f"ssh{n}", "setup": syns[:-1], "probe": syns[-1]})
    out.append({"name": "ssh-other-source", "probe": _pkt(B, "tcp", 22, 40009, "S"),
                "setup": [_pkt(A, "tcp", 22, 40000 + i, "S") for i in range(3)]})
    # a rejected connection is never confirmed: it leaves the list, the count stays at 2+1
    out.append({"name": "ssh-after-reject", "probe": _pkt(A, "tcp", 22, 40010, "S"),
                "setup": [_pkt(A, "tcp", 22, 40000 + i, "S") for i in range(4)]})
    # a connection closed by RST no longer counts
    out.append({"name": "ssh-after-rst", "probe": _pkt(A, "tcp", 22, 40011, "S"),
                "setup": [_pkt(A, "tcp", 22, 40000, "S"), _pkt(A, "tcp", 22, 40001, "S"),
                          _pkt(A, "tcp", 22, 40000, "R")]})
    # every packet of a connection reaches the port-25 rule: counted once; a second connection
    # from the same /24 is over the limit of 1
    c1 = [_pkt(A, "tcp", 25, 41000, "S"), _pkt(A, "tcp", 25, 41000, "SA", "out"),
          _pkt(A, "tcp", 25, 41000, "A"), _pkt(A, "tcp", 25, 41000, "PA")]
    out.append({"name": "smtp-one-conn", "setup": c1[:-1], "probe": c1[-1]})
    out.append({"name": "smtp-same-24", "setup": c1[:1], "probe": _pkt(A2, "tcp", 25, 41001, "S")})
    out.append({"name": "smtp-other-24", "setup": c1[:1], "probe": _pkt(B, "tcp", 25, 41001, "S")})
    # UDP by destination: the second flow to this host is over --connlimit-upto 1
    for n in range(1, 4):
        flows = [_pkt(A if i % 2 == 0 else B, "udp", 53, 5000 + i) for i in range(n)]
        out.append({"name": f"dns{n}", "setup": flows[:-1], "probe": flows[-1]})
    out.append({"name": "dns-same-flow-twice", "setup": [_pkt(A, "udp", 53, 5000)],
                "probe": _pkt(A, "udp", 53, 5000)})
    return cases_from_json(out)


def _http_cases():
    out = []
    for n in range(1, 4):
        syns = [_pkt(A if i % 2 == 0 else B, "tcp", 80, 42000 + i, "S") for i in range(n)]
        out.append({"name": f"http{n}", "setup": syns[:-1], "probe": syns[-1]})
    return cases_from_json(out)


def _run(kernel, rs, loaders, cases):
    sim = Simulator(rs, sim_options())
    expected = [sim.run_case(c) for c in cases]
    kernel.prepare(cases)
    kernel.packet_gap = 0.012  # > 2 jiffies at HZ=250 (see KernelHarness.packet_gap)
    for loader in loaders:
        got = kernel_verdicts(loader, cases, kernel)
        for c, want, have in zip(cases, expected, got):
            assert (have.verdict, have.setup_verdicts) == (want.verdict, want.setup_verdicts), \
                (loader[0], c.name)
    return {c.name: r.verdict for c, r in zip(cases, expected)}


def test_connlimit_agrees_with_kernel_iptables_and_nft(kernel):
    rs = parse_iptables_save(RULES, "connlimit.rules")
    v = _run(kernel, rs, [("iptables", RULES), ("nft", emit_nft(rs))], _cases())
    # the simulator's own reading: not trivially one verdict
    assert (v["ssh2"], v["ssh3"], v["ssh-other-source"]) == ("ACCEPT", "REJECT", "ACCEPT")
    assert (v["ssh-after-reject"], v["ssh-after-rst"]) == ("REJECT", "ACCEPT")
    assert (v["smtp-one-conn"], v["smtp-same-24"], v["smtp-other-24"]) == \
        ("ACCEPT", "DROP", "ACCEPT")
    assert (v["dns1"], v["dns2"], v["dns-same-flow-twice"]) == ("ACCEPT", "DROP", "ACCEPT")


def test_bare_nft_ct_count_agrees_with_kernel(kernel):
    rs = parse_text(NFT_CT_COUNT, "count.nft", "nft")
    v = _run(kernel, rs, [("nft", NFT_CT_COUNT), ("nft", emit_nft(rs))], _http_cases())
    assert (v["http1"], v["http2"], v["http3"]) == ("ACCEPT", "DROP", "DROP")
