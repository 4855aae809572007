"""Differential testing against the real kernel: for random iptables-shaped IR rulesets and
packet scenarios, the kernel running emit_iptables(IR) (iptables-restore), the kernel running
emit_nft(IR) (nft -f), the kernel running emit_nft(optimize(IR)) (`fwc translate -O`), and the
simulator on IR, on parse_iptables_save(emit_iptables(IR)), on parse_nft(emit_nft(IR)) and on
optimize(IR) all give every case the same verdicts (setup packets too) and ct state.

One KernelHarness serves the whole module (namespaces cost ~100 ms, a case ~1 ms).
Examples: 40 rulesets x 20 cases in the default/ci profile, 2,000 with FWC_HYPOTHESIS_PROFILE=long.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fwc.testing.strategies import budget, differential, report, rulesets, scenarios

pytestmark = pytest.mark.kernel


# no explain phase (it re-runs failing examples under a tracer), one bug shrunk at a time:
# every shrink step reloads both rulesets into the kernel
@settings(max_examples=budget(40, 2000), deadline=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_backends_simulator_and_kernel_agree(kernel_module, data):
    rs = data.draw(rulesets(), label="ruleset")
    cases = data.draw(scenarios(rs, 20), label="cases")
    results, diffs = differential(rs, cases, kernel_module)
    assert not diffs, report(rs, diffs)
    assert all(len(r) == len(cases) for r in results.values())
    assert {"kernel-iptables", "kernel-nft", "kernel-nft-O", "sim-O"} <= set(results)
