"""Reverse translation in the kernel: every real-world iptables ruleset, translated to nftables by
fwc, read back by fwc's nft front end and written again as iptables, decides like the original.

iptables -> IR -> emit_nft -> parse_nft -> IR -> emit_iptables; the original and the result are
both loaded with iptables-restore into the kernel harness, and at least 200 generated cases per
ruleset must get the same verdict and ct state from both (cases a token bucket decides may
differ between two kernel runs, as in test_corpus_kernel).
"""

from __future__ import annotations

import itertools
import os

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.errors import ErrorGroup
from fwc.frontends import load_ruleset
from fwc.frontends.nft import parse_nft
from fwc.testing.compare import compare_kernel
from fwc.testing.gen import generate_cases, ruleset_ifaces
from fwc.testing.kernel import KernelHarness
from tests.corpus import REAL_WORLD, real_world_files
from tests.kernel.test_corpus_kernel import REFUSED, _ipsets, _rate_dependent

pytestmark = pytest.mark.kernel
CASES = 200
CORPUS = real_world_files()
# the two rulesets fwc refuses to translate to nft (one construct each without an exact nft
# form, see test_corpus_kernel.REFUSED) go through with --drop-unsupported; neither dropped
# construct can change a verdict the harness sees: CHECKSUM --checksum-fill only fills in a
# checksum, and the harness has no bridge, so --physdev-is-bridged never matches there
DROPPED = {"iptables-upstream/ipt-save/dumps/fedora27-iptables": "CHECKSUM",
           "net-network/configs_openlab/stettenstr/doku/iptables-save.txt": "physdev"}

# rulesets whose nft translation has no iptables form, with the reason.  (wireless.txt's
# raw-table CT --helper becomes a replay chain at priority -199, which the iptables backend
# maps back to the raw table: nft_helpers.merge_helper_replays.)
REVERSE_REFUSED: dict[str, str] = {}

_counter = itertools.count()


def _harness(ifaces) -> KernelHarness:
    """A harness whose namespaces carry this test's tag (nftf2) and the pid."""
    h = KernelHarness(ifaces=ifaces)
    tag = f"nftf2{os.getpid()}x{next(_counter)}"
    h.fw = tag + "fw"
    h.peers = {name: f"{tag}p{i}" for i, name in enumerate(h.ifaces)}
    return h


def reverse(rs: ir.Ruleset, drop: str = "") -> tuple[ir.Ruleset, dict[str, str]]:
    if drop:
        from fwc.backends.nft import emit_nft_with_warnings

        text, dropped = emit_nft_with_warnings(rs, drop_unsupported=True)
        assert len(dropped) == 1 and drop in dropped[0].message and dropped[0].loc.line > 0
    else:
        text = emit_nft(rs)
    back = parse_nft(text, "emitted.nft")
    return back, emit_iptables(back)


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(REAL_WORLD)) for p in CORPUS])
def test_reverse_translation_means_the_same_in_the_kernel(path, kernel_ok):
    key = str(path.relative_to(REAL_WORLD))
    rs = load_ruleset(str(path))
    if key in REVERSE_REFUSED:
        with pytest.raises(ErrorGroup) as ei:
            reverse(rs)
        assert ei.value.exit_code == 1
        assert all(REVERSE_REFUSED[key] in e.message and e.loc.line > 0 for e in ei.value.errors)
        return
    if key in REFUSED:
        with pytest.raises(ErrorGroup):
            emit_nft(rs)  # refused by default
    back, texts = reverse(rs, DROPPED.get(key, ""))
    family = rs.tables[0].family
    assert set(texts) == {family}, f"the round trip changed the families: {sorted(texts)}"
    original = path.read_text()
    loader_a = ("iptables", original, None) if family == "ip" else ("iptables", None, original)
    loader_b = ("iptables", texts["ip"], None) if family == "ip" else ("iptables", None, texts["ip6"])
    ifaces = tuple(dict.fromkeys((ruleset_ifaces(rs) or ()) + ("eth0", "eth1")))[:2]
    cases = generate_cases(rs, CASES, seed=11, ifaces=ifaces)
    with _harness(ifaces) as h:
        for name in _ipsets(rs):
            h.exec("ipset", "create", name, "hash:net" + (" family inet6" if family == "ip6" else ""))
        diffs = compare_kernel(loader_a, loader_b, cases, h)
        verdicts = {r.verdict for r in h.run_cases(cases[:40])}
    timing = _rate_dependent(rs, cases) | _rate_dependent(back, cases)
    real = [d for d in diffs if d[0].name not in timing]
    detail = "\n".join(f"{c.name}: original {a.verdict}/{a.ct_state} reversed {b.verdict}/"
                       f"{b.ct_state} probe={c.probe}" for c, a, b in real[:5])
    assert not real, f"{len(real)} of {len(cases)} cases differ:\n{detail}"
    assert len(cases) >= CASES and verdicts  # the run did produce verdicts


def test_dropped_are_exactly_the_refused():
    assert set(DROPPED) == set(REFUSED) - {k for k in REFUSED if k.startswith("examples/")}
