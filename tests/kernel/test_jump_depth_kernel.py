"""The kernel validates every chain a base chain reaches and refuses one 16 jumps deep
(NFT_JUMP_STACK_SIZE, EMLINK "Too many links"), for goto and verdict maps as for jump, and
also when that chain is empty.  fwc must refuse exactly the rulesets the kernel refuses, with
the location of the jump that goes too deep."""

from __future__ import annotations

import pytest

from fwc import ir
from fwc.errors import ErrorGroup, FwcSyntaxError
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.nft import parse_nft
from fwc.testing import netns

pytestmark = pytest.mark.kernel


def chain_save(n: int, verb: str) -> str:
    """INPUT -> C0 -> ... -> C(n-1): chain C(n-1) sits n levels below INPUT."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]"] + [f":C{i} - [0:0]" for i in range(n)]
    lines += ["-A INPUT -p tcp -j C0"] + [f"-A C{i} -{verb} C{i + 1}" for i in range(n - 1)]
    return "\n".join(lines + ["COMMIT", ""])


def chain_nft(n: int, vmap: bool) -> str:
    body = ["table ip t {", " chain in {", "  type filter hook input priority 0;",
            "  jump c0", " }"]
    for i in range(n):
        nxt = (f"  tcp dport vmap {{ 22 : jump c{i + 1}, 80 : accept }}" if vmap
               else f"  goto c{i + 1}") if i < n - 1 else "  accept"
        body += [f" chain c{i} {{", nxt, " }"]
    return "\n".join(body + ["}", ""])


def _fwc_iptables(text: str):
    try:
        parse_iptables_save(text, "d.rules", "ip")
        return None
    except ErrorGroup as e:
        return e.errors[0]


def _fwc_nft(text: str):
    try:
        parse_nft(text, "d.nft")
        return None
    except FwcSyntaxError as e:
        return e


@pytest.mark.parametrize("n", [14, 15, 16, 17])
def test_fwc_refuses_the_jump_depths_the_kernel_refuses(kernel_ok, n):
    ns = "fwc-depth"
    netns.delete(ns)
    netns.create(ns)
    try:
        for verb in ("j", "g"):
            text = chain_save(n, verb)
            loaded = netns.run(["iptables-restore"], input=text, check=False, ns=ns).returncode
            netns.run(["nft", "flush", "ruleset"], ns=ns)
            err = _fwc_iptables(text)
            assert (loaded == 0) == (err is None), (n, verb, loaded, err)
            if err is not None:  # the rule iptables-restore names first: the jump into level 16
                assert err.loc.line == 3 + n + ir.JUMP_STACK_SIZE - 1, err.format()
        for vmap in (False, True):
            text = chain_nft(n, vmap)
            loaded = netns.run(["nft", "-f", "-"], input=text, check=False, ns=ns).returncode
            netns.run(["nft", "flush", "ruleset"], ns=ns)
            err = _fwc_nft(text)
            assert (loaded == 0) == (err is None), (n, vmap, loaded, err)
            if err is not None:
                assert "Too many links" in err.message and err.loc.line == 7 + 3 * 14, err.format()
    finally:
        netns.delete(ns)
