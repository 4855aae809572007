"""Shared state of the nft emitter while it renders one rule."""

from __future__ import annotations

from typing import Callable, Optional

import attrs

from fwc.errors import Unsupported
from fwc.ir import NOLOC, Loc, family_test


class NotExpressible(Exception):
    """Raised inside rendering; the caller turns it into a located Unsupported."""

    def __init__(self, construct: str, why: str = "", verbatim: bool = False):
        super().__init__(construct)
        self.construct = construct
        self.why = why
        self.verbatim = verbatim  # the front end's own message (an ir.Refused rule)

    def located(self, loc: Loc = NOLOC) -> Unsupported:
        if self.verbatim:
            return Unsupported(self.construct, loc)
        why = f" ({self.why})" if self.why else ""
        return Unsupported(f"rule cannot be expressed in nftables: {self.construct}{why}", loc)


@attrs.define
class RuleCtx:
    """family: the table family (ip ip6 inet); l3: the packet family the rule is known to see
    (ip / ip6, or None in an inet table when the rule serves both)."""

    family: str
    l3: Optional[str]
    chain_name: Callable[[str], str]  # IR chain name -> emitted name
    helper_object: Callable[[str, str], str]  # (helper, l4 proto) -> ct helper object name
    set_name: Callable[[str], str] = str
    priorities: tuple[int, ...] = ()  # priorities of base chains that reach this chain
    hooks: tuple[str, ...] = ()
    # (name, key types, timeout ms) -> emitted dynamic set name, for hashlimit buckets
    dynamic_set: Optional[Callable[[str, tuple, int], str]] = None
    # whole-second intervals -> name of the `meta time` interval set holding them (ir.Time)
    time_set: Optional[Callable[[tuple], str]] = None
    counter_name: Callable[[str], str] = str  # named counter object -> emitted name
    limit_name: Callable[[str], str] = str  # named limit object of the rule's table -> emitted


def refuse(construct: str, why: str = "") -> NotExpressible:
    return NotExpressible(construct, why)


def named_priority(names: dict, prio: int) -> str:
    """`filter`, `mangle + 10`: the nearest of `names` (name -> value) within 10, else a number."""
    best = min(names, key=lambda n: abs(names[n] - prio))
    diff = prio - names[best]
    if diff == 0:
        return best
    if abs(diff) <= 10:
        return f"{best} {'+' if diff > 0 else '-'} {abs(diff)}"
    return str(prio)


def rule_family(ctx: RuleCtx, rule) -> Optional[str]:
    """The packet family ('ip' | 'ip6') a rule sees: its table's, the merged rule's, or in an
    inet table that of its family guard (`meta nfproto ipv4`); None when it serves both."""
    if ctx.l3 or ctx.family != "inet":
        return ctx.l3 or ctx.family
    return next((f for f in map(family_test, rule.matches) if f is not None), None)
