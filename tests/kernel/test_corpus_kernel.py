"""Issue: every real-world ruleset, translated by fwc, means the same in the kernel.

The original is loaded with iptables-restore and fwc's nft output with nft -f, each into the
throw-away namespaces of the kernel harness; at least 200 generated cases per ruleset (NEW
packets, established connections, ICMP errors, invalid packets, in every direction) must get
the same verdict and ct state from both.
"""

from __future__ import annotations

import pytest

from fwc import ir
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, simulate
from fwc.errors import ErrorGroup
from fwc.frontends import load_ruleset
from fwc.testing.compare import compare_kernel
from fwc.testing.gen import generate_cases, ruleset_ifaces
from fwc.testing.kernel import KernelHarness
from tests.corpus import REAL_WORLD, REPO, real_world_files


def corpus_id(p):
    return str(p.relative_to(REAL_WORLD if REAL_WORLD in p.parents else REPO))

pytestmark = pytest.mark.kernel
CORPUS = real_world_files() + sorted((REPO / "examples").glob("*.rules"))
CASES = 200

# rulesets fwc refuses by default, with the construct that has no exact nftables form
REFUSED = {
    "iptables-upstream/ipt-save/dumps/fedora27-iptables":
        "CHECKSUM --checksum-fill (nftables has no checksum-fill statement)",
    "net-network/configs_openlab/stettenstr/doku/iptables-save.txt":
        "-m physdev --physdev-is-bridged (bridge port data is not visible to nft ip tables)",
    "examples/ufw-host.rules": "-m recent (an nft set keeps no per-address hit history)",
}


def _rate_dependent(rs: ir.Ruleset, cases) -> set[str]:
    """Cases whose outcome depends on a token bucket (limit/hashlimit): the simulator decides
    them differently with every bucket under and over its rate.  Buckets refill with the clock
    (jiffies in xt_hashlimit, nanoseconds in nft), so on which packet a bucket runs dry can
    differ between two kernel runs; tests/kernel/test_ratelimit_kernel.py checks the buckets."""
    if not any(isinstance(m, (ir.Limit, ir.HashLimit)) for t in rs.tables for c in t.chains
               for r in c.rules for m in r.matches):
        return set()
    under = simulate(rs, cases, SimOptions(limit_over=False))
    over = simulate(rs, cases, SimOptions(limit_over=True))
    return {a.name for a, b in zip(under, over)
            if (a.verdict, a.setup_verdicts) != (b.verdict, b.setup_verdicts)}


def _ipsets(rs: ir.Ruleset) -> list[str]:
    return sorted({s.name for t in rs.tables for s in t.sets if isinstance(s, ir.ExternalSet)})


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_translation_means_the_same_in_the_kernel(path, kernel_ok):
    rs = load_ruleset(str(path))
    key = corpus_id(path)
    if key in REFUSED:
        with pytest.raises(ErrorGroup) as ei:
            emit_nft(rs)
        assert ei.value.exit_code == 1
        assert all(e.loc.file == str(path) and e.loc.line > 0 for e in ei.value.errors)
        return
    text = emit_nft(rs)
    family = rs.tables[0].family
    original = path.read_text()
    loader = ("iptables", original, None) if family == "ip" else ("iptables", None, original)
    ifaces = tuple(dict.fromkeys((ruleset_ifaces(rs) or ()) + ("eth0", "eth1")))[:2]
    cases = generate_cases(rs, CASES, seed=7, ifaces=ifaces)
    with KernelHarness(ifaces=ifaces) as h:
        for name in _ipsets(rs):
            h.exec("ipset", "create", name, "hash:net" + (" family inet6" if family == "ip6" else ""))
        diffs = compare_kernel(loader, ("nft", text), cases, h)
        verdicts = {r.verdict for r in h.run_cases(cases[:40])}
    detail = "\n".join(f"{c.name}: iptables {a.verdict}/{a.ct_state} nft {b.verdict}/{b.ct_state}"
                       f" probe={c.probe}" for c, a, b in diffs[:5]
                       if c.name not in _rate_dependent(rs, [c]))
    timing = _rate_dependent(rs, cases)
    real = [d for d in diffs if d[0].name not in timing]
    assert not real, f"{len(real)} of {len(cases)} cases differ:\n{detail}"
    assert len(cases) >= CASES and verdicts  # the run did produce verdicts
