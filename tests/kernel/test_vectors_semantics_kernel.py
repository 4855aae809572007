"""Construct by construct, what the kernel does is what fwc says: each sampled vector of nft's
tests/py (`../shared/corpus/nft-py`) and of iptables-translate (`../shared/corpus/
iptables-txlate`) becomes a one-rule ruleset, and generated packets go through the original
in the kernel, through fwc's translation in the kernel (iptables for nft vectors, nft for
iptables ones) and through the simulator.  Found: nft's `tcp option N missing` matching UDP
(fwc's nft for `-p tcp ! --tcp-option N`), TTL/DSCP targets outside mangle, and the
simulator's MSS on SYNs.  Rules with state (limits, quotas, counters of connections) are left
out: the kernel keeps it across cases, the simulator per case."""

from __future__ import annotations

import shlex

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.iptables_ext import TARGETS
from fwc.frontends.nft import parse_nft
from fwc.testing.compare import differs, kernel_verdicts
from fwc.testing.gen import generate_cases, ruleset_ifaces
from fwc.testing.kernel import KernelError, KernelHarness, kernel_or_skip, sim_options
from tests.corpus import TXLATE, require
from tests.test_nft_frontend_nftpy_data import CORPUS as NFTPY, all_vectors
from tests.txlate import _table, load_cases

pytestmark = pytest.mark.kernel
CASES = 12
NFT_EVERY, TXLATE_EVERY = 6, 3


def _stateful(rs: ir.Ruleset) -> bool:
    return any(isinstance(m, ir.STATEFUL_MATCHES) or isinstance(m, (ir.Limit, ir.HashLimit))
               for t in rs.tables for c in t.chains for r in c.rules for m in r.matches)


def _ifaces(rs: ir.Ruleset) -> tuple[str, str]:
    names = [i for i in dict.fromkeys((ruleset_ifaces(rs) or ()) + ("eth0", "eth1"))
             if i.isalnum() and len(i) < 16]
    return tuple(names[:2])


def _three_ways(rs, original, translation) -> list:
    """(case, kernel original, kernel translation, simulator) for every case that differs."""
    ifaces = _ifaces(rs)
    cases = generate_cases(rs, CASES, seed=5, ifaces=ifaces)
    with KernelHarness(ifaces=ifaces) as h:
        h.prepare(cases)
        try:
            kern = kernel_verdicts(original, cases, h)
        except KernelError as e:  # (this nft or kernel refuses the vector itself)
            pytest.skip(f"the original does not load here: {str(e)[:100]}")
        try:
            ours = kernel_verdicts(translation, cases, h) if translation else kern
        except KernelError as e:
            if "queue" in str(e) and "No such file" in str(e):
                pytest.skip("no nft_queue in this kernel")
            raise
    sim = Simulator(rs, sim_options(ifaces))
    out = []
    for c, a, b in zip(cases, kern, ours):
        s = sim.run_case(c)
        if differs(a, b) or differs(a, s):
            out.append((c.name, a.verdict, a.ct_state, b.verdict, s.verdict, s.ct_state))
    return out


def _nft_vectors():
    if not NFTPY.is_dir():
        return []
    vecs = [v for v in all_vectors() if "hook" in v.prelude.split("\n")[1]]
    return vecs[::NFT_EVERY]


@pytest.mark.parametrize("v", _nft_vectors(), ids=lambda v: f"{v.file}:{v.line}:{v.family}")
def test_nft_vector_kernel_iptables_translation_and_simulator_agree(v):
    kernel_or_skip()
    text = v.prelude + f"\nadd rule {v.family} {v.table} {v.chain} {v.rule}\n"
    try:
        rs = parse_nft(text, "v.nft")
        Simulator(rs, sim_options()).run_case(generate_cases(rs, 1, seed=1)[0])
    except (FwcError, ErrorGroup) as e:
        pytest.skip(f"not simulated: {e}")
    if _stateful(rs):
        pytest.skip("state the kernel keeps across cases")
    try:
        ipt = emit_iptables(rs)
        translation = ("iptables", ipt.get("ip"), ipt.get("ip6"))
    except (FwcError, ErrorGroup):
        translation = None  # (the simulator is still compared)
    assert _three_ways(rs, ("nft", text), translation) == []


def _restore_word(a: str) -> str:
    return a if a and not any(ch in a for ch in ' "\'') else '"' + a.replace('"', '\\"') + '"'


def _txlate_rulesets():
    if not TXLATE.is_dir():
        return []
    out = []
    for case in load_cases()[::TXLATE_EVERY]:
        args = list(case.args)
        table = _table(args)
        while "-t" in args:
            k = args.index("-t")
            del args[k:k + 2]
        if not any(a in ("-j", "-g") for a in args):
            args += ["-j", "DROP"] if table != "nat" else []
        jumps = [b for a, b in zip(args, args[1:]) if a in ("-j", "-g") and b not in TARGETS
                 and b not in ("ACCEPT", "DROP", "RETURN", "QUEUE")]
        chains = [b for a, b in zip(args, args[1:]) if a in ("-A", "-I")]
        if jumps or any(c not in ir.TABLE_CHAINS[table] for c in chains):
            continue  # (a jump to an empty chain decides nothing)
        lines = [f"*{table}"] + [f":{c} ACCEPT [0:0]" for c in ir.TABLE_CHAINS[table]]
        out.append((case.id, case.family,
                    "\n".join(lines + [" ".join(map(_restore_word, args)), "COMMIT", ""])))
    return out


@pytest.mark.parametrize("vid,family,text", _txlate_rulesets(), ids=lambda x: str(x)[:40])
def test_txlate_vector_kernel_nft_translation_and_simulator_agree(vid, family, text):
    kernel_or_skip()
    require(TXLATE)
    try:
        rs = parse_iptables_save(text, vid, family)
        out = emit_nft(rs)
        Simulator(rs, sim_options()).run_case(generate_cases(rs, 1, seed=1)[0])
    except (FwcError, ErrorGroup) as e:
        pytest.skip(f"refused: {e}")
    if _stateful(rs) or any(isinstance(x, ir.Statistic) for t in rs.tables for c in t.chains
                            for r in c.rules for x in r.matches):
        pytest.skip("state the kernel keeps across cases")
    original = ("iptables", text if family == "ip" else None, text if family == "ip6" else None)
    assert _three_ways(rs, original, ("nft", out)) == []
