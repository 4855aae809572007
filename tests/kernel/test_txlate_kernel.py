"""iptables-translate's upstream vectors: fwc's nft output must mean what the expected nft rule
means.  Both are loaded into the kernel (a throw-away netns) and the listings compared with
counters removed.  Vectors known to be wrong upstream, and fwc's documented gaps, are listed in
tests/txlate_known.py with the reason; everything else must be identical."""

from __future__ import annotations

import os
import re

import pytest

from fwc.backends.nft import emit_nft
from fwc.errors import ErrorGroup, FwcError
from fwc.testing import netns
from tests.corpus import TXLATE, require
from tests.txlate import case_ruleset, load_cases
from tests.txlate_known import KNOWN

pytestmark = pytest.mark.kernel

_COUNTER = re.compile(r"\s*counter packets \d+ bytes \d+")


def _normal(listing: str) -> list[str]:
    out = []
    for line in listing.splitlines():
        line = _COUNTER.sub("", line).rstrip()
        if line.strip():
            out.append(line.strip())
    return out


def _scaffold(text: str) -> str:
    """The tables and chains of fwc's output, without rules: where the expected rule goes."""
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if (s.startswith(("table ", "chain ", "type ", "policy ", "}", "delete table"))
                or s.startswith(("set ", "ct helper ")) or not s):
            keep.append(line)
    return "\n".join(keep) + "\n"


def compare_case(ns: str, case) -> tuple[str, str]:
    """-> (status, detail): identical | different | unsupported | load-error."""
    try:
        ours = emit_nft(case_ruleset(case))
    except ErrorGroup as g:
        return "unsupported", "; ".join(e.message for e in g.errors)
    except FwcError as e:
        return "unsupported", e.message
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    p = netns.run(["nft", "-f", "-"], input=ours, ns=ns, check=False)
    if p.returncode != 0:
        return "load-error", f"fwc output rejected: {p.stderr.strip()}\n{ours}"
    mine = _normal(netns.run(["nft", "list", "ruleset"], ns=ns).stdout)
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    theirs_text = _scaffold(ours) + "\n".join(case.expected) + "\n"
    p = netns.run(["nft", "-f", "-"], input=theirs_text, ns=ns, check=False)
    if p.returncode != 0:
        return "load-error", f"expected rule rejected: {p.stderr.strip()}"
    theirs = _normal(netns.run(["nft", "list", "ruleset"], ns=ns).stdout)
    if mine == theirs:
        return "identical", ""
    return "different", "fwc:\n  " + "\n  ".join(mine) + "\nexpected:\n  " + "\n  ".join(theirs)


@pytest.fixture(scope="module")
def txns(kernel_ok):
    name = f"fwc-txlate-{os.getpid()}"
    netns.create(name)
    try:
        yield name
    finally:
        netns.delete(name)


def test_txlate_vectors_mean_the_same(txns):
    require(TXLATE)
    cases = load_cases()
    assert len(cases) == 382
    results = {c.id: compare_case(txns, c) for c in cases}
    bad = {k: v for k, v in results.items() if v[0] != "identical" and k not in KNOWN}
    stale = [k for k in KNOWN if results.get(k, ("identical",))[0] == "identical"]
    identical = sum(1 for v in results.values() if v[0] == "identical")
    equivalent = sum(1 for k, v in results.items()
                     if v[0] != "identical" and KNOWN.get(k, ("",))[0] == "equivalent")
    print(f"\ntxlate: {identical}/{len(cases)} identical, {equivalent} shown equivalent, "
          f"{len(cases) - identical - equivalent} known gaps")
    assert not bad, "\n\n".join(f"{k}: {v[0]}: {v[1]}" for k, v in sorted(bad.items())[:15])
    assert not stale, f"listed as known but now identical (remove from txlate_known): {stale}"
    assert (identical + equivalent) / len(cases) >= 0.95
