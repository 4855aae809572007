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


_OWN_SET = re.compile(r"(?:^add set \S+ \S+ (\S+)|\bmeter (\S+) )")


def _scaffold(text: str, expected=()) -> str:
    """The tables, chains and sets of fwc's output, without rules: where the expected rule goes.
    Sets the expected commands create themselves (`add set`, `meter NAME`) are left out."""
    own = {a or b for cmd in expected for a, b in _OWN_SET.findall(cmd)}
    keep, skipping = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("set ") and s.split()[1] in own:
            skipping = True
        if skipping:
            skipping = s != "}"
            continue
        if (s.startswith(("table ", "chain ", "type ", "policy ", "}", "delete table",
                          "flags ", "size ", "timeout "))
                or s.startswith("set ") or (s.startswith("ct helper ") and s.endswith("{"))
                or not s):  # (`ct helper NAME {` declares an object; `ct helper "x"` is a rule)
            keep.append(line)
    return "\n".join(keep) + "\n"


# This kernel has no nft_queue: a rule with `queue` fails with ENOENT on load.  When both
# fwc's and the expected rule fail only for that reason, the bytecode nft generates for each
# (`nft -c --debug=netlink`, printed before the kernel is asked) is compared instead.
_BC_COUNTER = re.compile(r"^\s*\[ counter pkts \d+ bytes \d+ \]$")


def _queue_only_failure(stderr: str, text: str) -> bool:
    """Every error is ENOENT and points (nft's ^^^ marker) at a `queue` statement."""
    lines = stderr.splitlines()
    errors = [i for i, ln in enumerate(lines) if "Error:" in ln]
    if not errors:
        return False
    for i in errors:
        if "No such file or directory" not in lines[i] or i + 2 >= len(lines):
            return False
        src, marks = lines[i + 1], lines[i + 2]
        start = marks.index("^") if "^" in marks else -1
        if start < 0 or src[start:len(marks.rstrip())] != "queue":
            return False
    return True


def _bytecode(ns: str, text: str) -> list[str]:
    p = netns.run(["nft", "-c", "--debug=netlink", "-f", "-"], input=text, ns=ns, check=False)
    return [ln.rstrip() for ln in p.stdout.splitlines()
            if ln.strip() and not _BC_COUNTER.match(ln)]


def compare_case(ns: str, case) -> tuple[str, str]:
    """-> (status, detail): identical | different | unsupported | load-error."""
    try:
        ours = emit_nft(case_ruleset(case))
    except ErrorGroup as g:
        return "unsupported", "; ".join(e.message for e in g.errors)
    except FwcError as e:
        return "unsupported", e.message
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    theirs_text = _scaffold(ours, case.expected) + "\n".join(case.expected) + "\n"
    p = netns.run(["nft", "-f", "-"], input=ours, ns=ns, check=False)
    if p.returncode != 0:
        if _queue_only_failure(p.stderr, ours):
            return _compare_bytecode(ns, ours, theirs_text)
        return "load-error", f"fwc output rejected: {p.stderr.strip()}\n{ours}"
    mine = _normal(netns.run(["nft", "list", "ruleset"], ns=ns).stdout)
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    p = netns.run(["nft", "-f", "-"], input=theirs_text, ns=ns, check=False)
    if p.returncode != 0:
        return "load-error", f"expected rule rejected: {p.stderr.strip()}"
    p = netns.run(["nft", "list", "ruleset"], ns=ns, check=False)
    if p.returncode != 0:  # (nft 1.0.6 aborts listing `jhash ct original saddr`)
        return "load-error", f"nft cannot list the expected rule: {p.stderr.strip()}"
    theirs = _normal(p.stdout)
    if mine == theirs:
        return "identical", ""
    return "different", "fwc:\n  " + "\n  ".join(mine) + "\nexpected:\n  " + "\n  ".join(theirs)


def _compare_bytecode(ns: str, ours: str, theirs_text: str) -> tuple[str, str]:
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    p = netns.run(["nft", "-f", "-"], input=theirs_text, ns=ns, check=False)
    if p.returncode == 0 or not _queue_only_failure(p.stderr, theirs_text):
        return "different", f"fwc's rule needs nft_queue, the expected one loads: {p.stderr}"
    mine, theirs = _bytecode(ns, ours), _bytecode(ns, theirs_text)
    if mine and mine == theirs:
        return "identical", "same nft bytecode (no nft_queue in this kernel)"
    return "different", "bytecode differs:\n  " + "\n  ".join(mine) + "\nexpected:\n  " + \
        "\n  ".join(theirs)


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
    # the target is 95%; fwc reaches 364/382 (95.3%): every other vector is a gap fwc
    # refuses with a located error because nftables cannot say it exactly (see txlate_known
    # and README).  This guards the level reached; it must only ever go up.
    assert identical + equivalent >= 364
