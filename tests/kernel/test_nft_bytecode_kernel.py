"""What fwc writes for an nft rule compiles, in the kernel, to what the rule itself compiles
to: for each vector of nftables' tests/py (../shared/corpus/nft-py) that this kernel and nft
1.0.6 take, the input and fwc's rewrite (parse_nft -> emit_nft) are checked with `nft
--debug=netlink -c` (the kernel validates the batch, nothing is committed) and their kernel
expressions and set elements compared."""

from __future__ import annotations

import os
import re

import pytest

from fwc.backends.nft import emit_nft
from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.nft import parse_nft
from fwc.testing import netns
from tests.test_nft_frontend_nftpy_data import CORPUS, FAMILIES, L2_FAMILIES, all_vectors

pytestmark = pytest.mark.kernel

# ip/ip6/inet vectors whose rewrite compiles to other expressions meaning the same (each
# checked by hand against the --debug=netlink output):
SAME_MEANING = {
    # `ip protocol tcp` and `meta l4proto tcp` in an ip table (the backend's Proto forms)
    ("ip/ip_tcp.t", 6, "ip"), ("ip/tcp.t", 5, "ip"), ("ip/reject.t", 14, "ip"),
    ("inet/payloadmerge.t", 11, "ip"), ("inet/icmpX.t", 10, "inet"),
    # ... before a nat map or a tproxy statement (written back since they are in the backend)
    ("ip/snat.t", 14, "ip"), ("ip/snat.t", 19, "ip"),
    *{("ip/tproxy.t", n, "ip") for n in (9, 10, 12, 13)},
    # `tcp flags cwr` / `!= cwr` / `== syn` as `tcp flags & (...) ==|!= ...`
    *{("inet/tcp.t", n, f) for n in (68, 69, 70) for f in ("ip", "ip6", "inet")},
    # `> 1` as the range `2-65535`
    *{("inet/payloadmerge.t", n, f) for n in (13, 14) for f in ("ip", "ip6", "inet")},
    # `tcp sport != 1 tcp dport != 2`: nft 1.0.6 merges the two into one "not both" compare;
    # fwc reads what the text says (both differ) and writes it so that 1.0.6 keeps it
    *{("inet/payloadmerge.t", 8, f) for f in ("ip", "ip6", "inet")},
    # elements added in several batches, written as one set
    *{("ip/sets.t", n, f) for n in (32, 33, 34, 35) for f in ("ip", "inet")},
    *{("ip6/sets.t", n, f) for n in (25, 26) for f in ("ip6", "inet")},
    # `ct protocol` / `ct original protocol`; `meta nfproto ipv4 ct original saddr` / `ct
    # original ip saddr`; `ip saddr & 0xffff0000 == 0xffff0000` / `ip saddr 255.255.0.0/16`
    ("ip/ct.t", 19, "ip"), ("inet/ct.t", 14, "inet"), ("inet/ct.t", 7, "inet"),
    ("ip/ip.t", 111, "ip"), ("ip/ip.t", 111, "inet"),
    # a one-element prefix map written as a match on its key plus the whole-family map
    ("ip/snat.t", 17, "ip"),
}


def _need():
    ok, why = netns.ip_netns_usable()
    if ok and not CORPUS.is_dir():
        ok, why = False, "../shared corpus not available"
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def _bytecode(ns: str, text: str):
    """The kernel expressions and set elements nft compiles `text` to; None if it does not
    load."""
    p = netns.run(["nft", "--debug=netlink", "-c", "-f", "-"], input=text, ns=ns, check=False)
    if p.returncode != 0:
        return None
    out = []
    for line in p.stdout.splitlines():
        if line.startswith("\telement"):  # a set's elements, in no particular order
            out.append(sorted(e.strip() for e in line.split("\telement") if e.strip()))
        elif line.startswith(("  [", "__set")):
            out.append(re.sub(r"__set\d+", "__set", line))
    return out


def _compare(families) -> tuple[int, list, list]:
    ns = f"nbc{os.getpid()}"
    netns.create(ns)
    compared, differ, broken = 0, [], []
    try:
        for v in all_vectors(families):
            src = v.prelude + f"\nadd rule {v.family} {v.table} {v.chain} {v.rule}\n"
            try:
                rs = parse_nft(src, v.file)
                text = emit_nft(rs)
            except (FwcError, ErrorGroup):
                continue  # refused, located (counted by test_nft_frontend_corpus)
            if sum(len(c.rules) for t in rs.tables for c in t.chains) > 1:
                continue  # a match after a log or counter, split in two rules: other bytecode
                # by construction (tests/kernel/test_nft_split_kernel.py checks the meaning)
            want = _bytecode(ns, src)
            if want is None:
                continue  # this kernel (no bridge meta/reject, osf...) or nft 1.0.6 refuses it
            compared += 1
            got = _bytecode(ns, text)
            key = (v.file, v.line, v.family)
            if got is None:
                broken.append(f"{key} {v.rule}: the rewrite does not load")
            elif got != want:
                differ.append((key, f"{v.rule}\n  in:  {want}\n  out: {got}"))
    finally:
        netns.delete(ns)
    return compared, differ, broken


def test_l2_vectors_compile_to_the_same_kernel_expressions():
    _need()
    compared, differ, broken = _compare(L2_FAMILIES)
    print(f"\nbridge/netdev/arp: {compared} compared, {len(differ)} differ")
    assert compared > 140
    assert not broken and not differ, "\n".join(broken + [d for _, d in differ])


def test_ip_vectors_compile_to_the_same_kernel_expressions():
    _need()
    compared, differ, broken = _compare(FAMILIES)
    print(f"\nip/ip6/inet: {compared} compared, {len(differ)} differ (all known)")
    assert compared > 1800
    assert not broken, "\n".join(broken)
    unknown = [d for k, d in differ if k not in SAME_MEANING]
    assert not unknown, "\n".join(unknown)
    # the known ones still differ (else the list is stale)
    assert {k for k, _ in differ} == SAME_MEANING
