"""iptables -j SET (xt_SET) in the kernel, in fwc's nft translation (`add`/`update`/`delete
@set { ip saddr }` on a dynamic set) and in the simulator (from the iptables IR, and from the
nft text read back): a source that knocks on port 22 is added, then dropped, until a packet
to port 23 deletes it again."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

RULES = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -m set --match-set knock src -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j SET --add-set knock src --exist --timeout 60
-A INPUT -p tcp -m tcp --dport 23 -j SET --del-set knock src
COMMIT
"""


def _syn(port, sport):
    return {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": sport,
            "dport": port, "flags": "S"}


def test_set_target_agrees_in_kernel_nft_and_simulator():
    kernel_or_skip()
    rs = parse_iptables_save(RULES, "set.rules", "ip")
    text = emit_nft(rs)
    assert "update @knock { ip saddr timeout 60s }" in text and "delete @knock" in text
    cases = cases_from_json([{"name": "knock", "setup": [_syn(22, 40000), _syn(22, 40001),
                                                         _syn(23, 40002)],
                              "probe": _syn(22, 40003)}])
    want = (("ACCEPT", "DROP", "ACCEPT"), "ACCEPT")
    with KernelHarness() as h:
        h.prepare(cases)
        h.exec("ipset", "create", "knock", "hash:ip", "timeout", "0")
        ipt = kernel_verdicts(("iptables", RULES, None), cases, h)
        nft = kernel_verdicts(("nft", text), cases, h)
    sim = Simulator(rs, SimOptions(sets={"knock": []})).run_case(cases[0])
    # fwc's nft output read back: nft's own `update/delete @set` statements, simulated too
    from fwc.frontends.nft import parse_nft
    back = Simulator(parse_nft(text, "set.nft"), SimOptions()).run_case(cases[0])
    for who, r in (("iptables", ipt[0]), ("nft", nft[0]), ("simulator", sim),
                   ("simulator, nft read back", back)):
        assert (r.setup_verdicts, r.verdict) == want, who
