"""nft `numgen` in verdict maps (kube-proxy's nftables mode balances endpoints with
`numgen random mod N vmap { ... }`): `numgen inc` counts 0, 1, ..., N-1, 0 ... from the first
packet after the load, which the simulator does per case; `numgen random mod 1` is always 0."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

RULESET = """table ip t {
 chain rej {
  reject
 }
 chain input {
  type filter hook input priority filter; policy accept;
  udp dport 9 numgen inc mod 3 vmap { 0 : accept, 1 : drop, 2 : jump rej }
  udp dport 10 numgen random mod 1 offset 5 vmap { 5 : drop }
 }
}
"""


def _udp(port):
    return {"dir": "in", "proto": "udp", "src": "198.51.100.7", "dst": "192.0.2.1",
            "sport": 5000, "dport": port}


def test_numgen_vmap_agrees_with_the_kernel():
    kernel_or_skip()
    # one case: the kernel's counter starts when the ruleset is loaded, the simulator's per case
    cases = cases_from_json([{"name": "inc", "setup": [_udp(9), _udp(10), _udp(9), _udp(9),
                                                       _udp(9)], "probe": _udp(9)}])
    with KernelHarness() as h:
        h.prepare(cases)
        kern = kernel_verdicts(("nft", RULESET), cases, h)
    want = (("ACCEPT", "DROP", "DROP", "REJECT", "ACCEPT"), "DROP")
    assert (kern[0].setup_verdicts, kern[0].verdict) == want
    sim = Simulator(parse_nft(RULESET, "ng.nft"), SimOptions()).run_case(cases[0])
    assert (sim.setup_verdicts, sim.verdict) == want
