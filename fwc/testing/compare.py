"""Run cases against real-kernel rulesets and compare two of them.

A loader says how to put a ruleset into the harness:
    ("iptables", v4_text_or_None, v6_text_or_None)   iptables-restore / ip6tables-restore text
    ("nft", text)                                   nft -f text
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from fwc.packet import Case, CaseResult
from fwc.testing.kernel import KernelHarness

Loader = tuple


def load(harness: KernelHarness, loader: Loader) -> None:
    kind = loader[0]
    if kind == "iptables":
        v4 = loader[1] if len(loader) > 1 else None
        v6 = loader[2] if len(loader) > 2 else None
        harness.load_iptables(v4, v6)
    elif kind == "nft":
        harness.load_nft(loader[1])
    else:
        raise ValueError(f"unknown loader kind {kind!r} (expected 'iptables' or 'nft')")


def kernel_verdicts(loader: Loader, cases: Iterable[Case],
                    harness: Optional[KernelHarness] = None) -> list[CaseResult]:
    """What the kernel does with each case under the ruleset; reuses `harness` when given."""
    cases = list(cases)
    if harness is not None:
        load(harness, loader)
        return harness.run_cases(cases)
    with KernelHarness() as h:
        load(h, loader)
        return h.run_cases(cases)


def differs(a: CaseResult, b: CaseResult) -> bool:
    return a.verdict != b.verdict or a.ct_state != b.ct_state


def compare_kernel(loader_a: Loader, loader_b: Loader, cases: Sequence[Case],
                   harness: Optional[KernelHarness] = None) -> list[tuple[Case, CaseResult, CaseResult]]:
    """Cases on which the two rulesets disagree (verdict or ct state), run in one harness."""
    cases = list(cases)

    def run(h: KernelHarness):
        h.prepare(cases)  # both rulesets then meet the same addresses and routes
        results_a = kernel_verdicts(loader_a, cases, h)
        results_b = kernel_verdicts(loader_b, cases, h)
        return [(c, a, b) for c, a, b in zip(cases, results_a, results_b) if differs(a, b)]

    if harness is not None:
        return run(harness)
    with KernelHarness() as h:
        return run(h)
