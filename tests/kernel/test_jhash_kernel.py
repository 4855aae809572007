"""nft's `jhash` expression: the simulator's hash (the kernel's jhash over the key's register
bytes, scaled by reciprocal_scale) picks what the kernel picks, for addresses, ports, marks and
concatenations of them, IPv4 and IPv6."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import Simulator
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULES = """table inet t {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tudp dport 7000 jhash ip saddr mod 4 seed 0xdeadbeef { 0, 2 } drop
\t\tudp dport 7001 jhash ip saddr . udp sport mod 3 seed 7 offset 5 6 drop
\t\tudp dport 7002 jhash udp sport mod 2 seed 0x5 1 drop
\t\tudp dport 7003 jhash ip6 saddr mod 5 seed 0x1234 { 1, 4 } drop
\t\tudp dport 7004 meta mark set 0x2a
\t\tudp dport 7004 jhash meta mark . th sport mod 2 seed 3 0 drop
\t\tudp dport 7005 jhash meta l4proto . ip6 saddr . udp sport mod 7 seed 11 > 2 drop
\t}
}
"""


def test_jhash_agrees_with_the_kernel(kernel):
    rs = parse_nft(RULES, "jhash.nft")
    probes = []
    for i in range(16):
        for port in (7000, 7001, 7002, 7004):
            probes.append({"dir": "in", "proto": "udp", "src": f"198.51.100.{1 + 7 * i}",
                           "sport": 1000 + 97 * i, "dst": "192.0.2.1", "dport": port})
        for port in (7003, 7005, 7000):
            probes.append({"dir": "in", "proto": "udp", "src": f"2001:db8:{i:x}::{1 + 5 * i:x}",
                           "sport": 2000 + 31 * i, "dst": "2001:db8:f::1", "dport": port})
    cases = cases_from_json([{"name": f"p{k}", "probe": p} for k, p in enumerate(probes)])
    sim = Simulator(rs, sim_options())
    want = [sim.run_case(c).verdict for c in cases]
    for port in (7000, 7001, 7002, 7003, 7004, 7005):  # every rule's hash tells packets apart
        got = {w for w, p in zip(want, probes) if p["dport"] == port and
               not (port == 7000 and ":" in p["src"])}
        assert got == {"ACCEPT", "DROP"}, port
    kernel.prepare(cases)
    got = [r.verdict for r in kernel_verdicts(("nft", RULES), cases, kernel)]
    assert got == want, [(p, g, w) for p, g, w in zip(probes, got, want) if g != w][:8]
