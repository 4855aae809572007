"""Every nftables tests/py vector (../shared/corpus/nft-py) that nft 1.0.6 loads and fwc reads:
fwc's nft output passes `nft -c`, and its iptables output (where fwc writes one) passes
`iptables-restore --test` / `ip6tables-restore --test`.  Output that the tools refuse would be
output presented as complete that cannot be used."""

from __future__ import annotations

import os
import subprocess

import pytest

from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.nft import parse_nft
from fwc.testing import netns
from tests.test_nft_frontend_nftpy_data import CORPUS, FAMILIES, L2_FAMILIES, all_vectors

pytestmark = pytest.mark.kernel


def _refusal(ns: str, argv: list[str], text: str):
    r = subprocess.run(["ip", "netns", "exec", ns] + argv, input=text, capture_output=True,
                       text=True)
    return None if r.returncode == 0 else r.stderr.strip()[:300]


def test_nft_and_iptables_outputs_of_the_nft_py_vectors_load(kernel_ok):
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent (outside this repo's CI)")
    ns = f"fwcpy{os.getpid()}"
    netns.create(ns)
    bad, nft_ok, ipt_ok = [], 0, 0
    try:
        for v in all_vectors(FAMILIES + L2_FAMILIES):
            text = v.prelude + f"\nadd rule {v.family} {v.table} {v.chain} {v.rule}\n"
            try:
                rs = parse_nft(text, "v.nft")
            except (FwcError, ErrorGroup):
                continue
            if _refusal(ns, ["nft", "-c", "-f", "-"], text) is not None:
                continue  # nft itself refuses the vector here
            try:
                out = emit_nft(rs)
            except (FwcError, ErrorGroup):
                out = None
            if out is not None:
                why = _refusal(ns, ["nft", "-c", "-f", "-"], out)
                if why:
                    bad.append((v.file, v.line, v.rule, "nft", why))
                else:
                    nft_ok += 1
            if v.family in L2_FAMILIES:
                continue
            try:
                outs = emit_iptables(rs)
            except (FwcError, ErrorGroup):
                continue
            for fam, t in outs.items():
                tool = "iptables-restore" if fam == "ip" else "ip6tables-restore"
                why = _refusal(ns, [tool, "--test"], t)
                if why:
                    bad.append((v.file, v.line, v.rule, tool, why))
                else:
                    ipt_ok += 1
    finally:
        netns.delete(ns)
    assert bad == []
    assert nft_ok > 2000 and ipt_ok > 600  # (2606 and 1000+ outputs on 2026-12-03)
