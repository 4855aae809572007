"""nft byte-rate limits (`limit rate [over] N bytes/second [burst B bytes]`, anonymous and as a
named limit object): nft_limit's bucket holds one unit's rate plus the burst, full when the rule
is loaded, and a packet costs its length.  The simulator agrees with the kernel, one case per
fresh load, on the boundary (a packet of exactly rate + burst bytes passes, one byte more does
not) and on a bucket spent by an earlier packet of the case."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.frontends import parse_text
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULES = """table ip t {
\tlimit lb {
\t\trate over 500 bytes/second burst 100 bytes
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tudp dport 7000 limit rate 500 bytes/second accept
\t\tudp dport 7001 limit rate over 500 bytes/second burst 300 bytes drop
\t\tudp dport 7001 accept
\t\tudp dport 7002 limit name "lb" drop
\t\tudp dport 7003 limit name "lb" drop
\t\tudp dport { 7002, 7003 } accept
\t}
}
"""


def _pkt(dport, sport, length):
    # a UDP packet over IPv4 is 20 + 8 bytes of headers and its payload at the hook
    return {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "proto": "udp",
            "sport": sport, "dport": dport, "iif": "eth0", "payload": "x" * (length - 28)}


def _cases():
    out = []
    for port, cap in ((7000, 500), (7001, 800), (7002, 600)):
        for length in (cap, cap + 1):
            out.append({"name": f"p{port}-{length}", "setup": [],
                        "probe": _pkt(port, 5000, length)})
    # an earlier packet spends the bucket: 300 + 300 > 500, 300 + 150 fits
    for port, first, second in ((7000, 300, 300), (7000, 300, 150), (7003, 400, 300),
                                (7003, 400, 100)):
        out.append({"name": f"spent{port}-{first}-{second}",
                    "setup": [_pkt(port, 5000, first)], "probe": _pkt(port, 5001, second)})
    # the named limit's one bucket is shared by the rules naming it
    out.append({"name": "shared", "setup": [_pkt(7002, 5000, 400)],
                "probe": _pkt(7003, 5001, 300)})
    return cases_from_json(out)


def test_byte_rate_limits_agree_with_kernel(kernel):
    rs = parse_text(RULES, "bytelimit.nft", "nft")
    sim = Simulator(rs, sim_options())
    cases = _cases()
    expected = {c.name: sim.run_case(c) for c in cases}
    v = {k: r.verdict for k, r in expected.items()}
    assert (v["p7000-500"], v["p7000-501"]) == ("ACCEPT", "DROP")
    assert (v["p7001-800"], v["p7001-801"]) == ("ACCEPT", "DROP")
    assert (v["p7002-600"], v["p7002-601"]) == ("ACCEPT", "DROP")
    assert (v["spent7000-300-300"], v["spent7000-300-150"]) == ("DROP", "ACCEPT")
    assert (v["spent7003-400-300"], v["spent7003-400-100"], v["shared"]) == \
        ("DROP", "ACCEPT", "DROP")
    kernel.prepare(cases)
    for loader in (("nft", RULES), ("nft", emit_nft(rs))):
        for c in cases:  # a full bucket for each case
            (got,) = kernel_verdicts(loader, [c], kernel)
            want = expected[c.name]
            assert (got.verdict, got.setup_verdicts) == (want.verdict, want.setup_verdicts), \
                (loader[0], c.name)
