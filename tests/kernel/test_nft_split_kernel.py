"""An nft rule with a match after a log or counter (`tcp dport 22 log limit rate 3/second
accept`) is read as two IR rules; fwc's nft output of them, the simulator and the original in
the kernel give the same verdicts."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends.nft import parse_nft
from fwc.testing.compare import compare_kernel, kernel_verdicts
from fwc.testing.gen import generate_cases
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULESET = """table inet t {
 chain input {
  type filter hook input priority filter; policy drop;
  ct state established,related accept
  tcp dport 22 log prefix "ssh " limit rate 30/second accept
  counter ip saddr 198.51.100.0/24 counter drop
  udp dport 53 counter log prefix "dns " ct state new accept
  tcp dport 80 log meta nfproto ipv6 accept
 }
}
"""


def test_split_rules_mean_the_same_in_the_kernel(kernel):
    rs = parse_nft(RULESET, "split.nft")
    assert len(rs.tables[0].chains[0].rules) == 9
    ours = emit_nft(rs)
    cases = generate_cases(rs, 120, seed=3)
    assert not compare_kernel(("nft", RULESET), ("nft", ours), cases, kernel)
    want = kernel_verdicts(("nft", RULESET), cases, kernel)
    sim = simulate(rs, cases, sim_options())
    assert [(r.verdict, r.ct_state) for r in sim] == [(r.verdict, r.ct_state) for r in want]
    assert {r.verdict for r in want} >= {"ACCEPT", "DROP"}
