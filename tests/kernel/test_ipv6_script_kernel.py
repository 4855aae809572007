"""examples/ipv6-host.sh, an ip6tables script with extension-header matches (rt, frag), hop
limits, connlimit per /64 and ICMPv6: the script itself runs in a throw-away namespace and
ip6tables-save of the result is the original; the simulator, fwc's nft output (plain and -O)
and fwc's ip6tables-restore output must give the kernel's verdicts on generated cases."""

from __future__ import annotations

import os

import pytest

from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends import load_ruleset
from fwc.frontends.iptables import parse_iptables_save
from fwc.passes import optimize
from fwc.testing import netns
from fwc.testing.compare import kernel_verdicts
from fwc.testing.gen import generate_cases
from fwc.testing.kernel import sim_options
from tests.corpus import REPO

pytestmark = pytest.mark.kernel
SCRIPT = REPO / "examples" / "ipv6-host.sh"


def _as_the_kernel_saves_it() -> str:
    ns = f"v6script{os.getpid()}"
    netns.create(ns)
    try:
        netns.run(["sh", str(SCRIPT)], ns=ns)
        return netns.run(["ip6tables-save"], ns=ns).stdout
    finally:
        netns.delete(ns)


def test_ipv6_script_agrees_with_kernel(kernel):
    rs = load_ruleset(str(SCRIPT))
    saved = _as_the_kernel_saves_it()
    assert "-m rt --rt-type 0" in saved and "--connlimit-mask 64" in saved
    # the script and what the kernel made of it read to the same rules
    def rules(r):
        return [(c.name, [(x.matches, x.statements, x.verdict) for x in c.rules])
                for t in r.tables for c in t.chains]
    assert rules(parse_iptables_save(saved, "saved", "ip6")) == rules(rs)
    cases = generate_cases(rs, 200, seed=5)
    sim = simulate(rs, cases, sim_options())
    kernel.prepare(cases)
    kernel.packet_gap = 0.01  # connlimit: see KernelHarness.packet_gap
    want = kernel_verdicts(("iptables", None, saved), cases, kernel)
    legs = {"sim": sim,
            "nft": kernel_verdicts(("nft", emit_nft(rs)), cases, kernel),
            "nft -O": kernel_verdicts(("nft", emit_nft(optimize(rs))), cases, kernel),
            "ip6tables": kernel_verdicts(("iptables", None, emit_iptables(rs)["ip6"]), cases,
                                         kernel)}
    for leg, got in legs.items():
        bad = [(c.name, w.verdict, g.verdict) for c, w, g in zip(cases, want, got)
               if (w.verdict, w.ct_state) != (g.verdict, g.ct_state)]
        assert not bad, (leg, bad[:5])
    assert len({r.verdict for r in want}) > 1  # not one verdict for everything
