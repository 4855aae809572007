"""Construct by construct, what the kernel does is what fwc says: each sampled vector of nft's
tests/py (`../shared/corpus/nft-py`) and of iptables-translate (`../shared/corpus/
iptables-txlate`) becomes a one-rule ruleset, and generated packets go through the original
in the kernel, through fwc's translation in the kernel (iptables for nft vectors, nft for
iptables ones) and through the simulator.  Found: nft's `tcp option N missing` matching UDP
(fwc's nft for `-p tcp ! --tcp-option N`), TTL/DSCP targets outside mangle, and the
simulator's MSS on SYNs.  Rules with state (limits, quotas, counters of connections) are left
out: the kernel keeps it across cases, the simulator per case."""

from __future__ import annotations

import subprocess

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
from fwc.testing.kernel import KernelHarness, kernel_or_skip, sim_options
from tests.corpus import TXLATE
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
        kern = kernel_verdicts(original, cases, h)
        ours = kernel_verdicts(translation, cases, h) if translation else kern
    sim = Simulator(rs, sim_options(ifaces))
    out = []
    for c, a, b in zip(cases, kern, ours):
        s = sim.run_case(c)
        if differs(a, b) or differs(a, s):
            out.append((c.name, a.verdict, a.ct_state, b.verdict, s.verdict, s.ct_state))
    return out


# Chosen when the tests are collected, so that none skips itself: a vector fwc refuses or does
# not simulate, one with state, and one this nft or kernel refuses to load (nft's own vectors
# follow newer nft versions; this kernel has no nft_queue) is no vector to compare.

def _simulated(rs) -> bool:
    """The simulator runs every case the test compares (it refuses a construct it lacks only
    for the packets that reach it)."""
    if _stateful(rs):
        return False
    ifaces = _ifaces(rs)
    try:
        sim = Simulator(rs, sim_options(ifaces))
        for c in generate_cases(rs, CASES, seed=5, ifaces=ifaces):
            sim.run_case(c)
    except (FwcError, ErrorGroup):
        return False
    return True


def _loads(argv: list[str], text: str) -> bool:
    """Whether the kernel takes `text` (loaded by `argv` in a namespace of its own that goes
    when the command ends: `unshare --net`); True when that cannot be asked (not root)."""
    try:
        p = subprocess.run(["unshare", "--net", *argv], input=text, capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    return p.returncode == 0 or "Operation not permitted" in p.stderr


def _nft_loads(text: str) -> bool:
    return _loads(["nft", "-f", "-"], text)


def _restore_loads(text: str, family: str) -> bool:
    return _loads(["iptables-restore" if family == "ip" else "ip6tables-restore"], text)


def _nft_vectors():
    if not NFTPY.is_dir():
        return []
    out = []
    for v in [v for v in all_vectors() if "hook" in v.prelude.split("\n")[1]][::NFT_EVERY]:
        text = v.prelude + f"\nadd rule {v.family} {v.table} {v.chain} {v.rule}\n"
        try:
            rs = parse_nft(text, "v.nft")
        except (FwcError, ErrorGroup):
            continue
        if _simulated(rs) and _nft_loads(text):
            out.append(pytest.param(text, rs, id=f"{v.file}:{v.line}:{v.family}"))
    return out


@pytest.mark.parametrize("text,rs", _nft_vectors())
def test_nft_vector_kernel_iptables_translation_and_simulator_agree(text, rs):
    kernel_or_skip()
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
        text = "\n".join(lines + [" ".join(map(_restore_word, args)), "COMMIT", ""])
        try:
            rs = parse_iptables_save(text, case.id, case.family)
            nft = emit_nft(rs)
        except (FwcError, ErrorGroup):
            continue
        if any(isinstance(x, ir.Statistic) for t in rs.tables for c in t.chains
               for r in c.rules for x in r.matches):
            continue
        if _simulated(rs) and _restore_loads(text, case.family) and _nft_loads(nft):
            out.append(pytest.param(case.family, text, rs, nft, id=case.id))
    return out


@pytest.mark.parametrize("family,text,rs,nft", _txlate_rulesets())
def test_txlate_vector_kernel_nft_translation_and_simulator_agree(family, text, rs, nft):
    kernel_or_skip()
    original = ("iptables", text if family == "ip" else None, text if family == "ip6" else None)
    assert _three_ways(rs, original, ("nft", nft)) == []
