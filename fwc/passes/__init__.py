"""Meaning-preserving optimiser passes (`fwc translate -O`).

Each pass is a pure `Ruleset -> Ruleset` function in its own module; `optimize` runs them in an
order where each one's output only helps the next:

1. tidy     - rules without effect and final `return`s of user chains removed; jumps to a
              chain that starts with an unconditional accept/drop replaced by that verdict;
2. inline   - single-use user chains spliced into their caller (exposes rules to the rest);
3. dead     - rules no packet can reach removed (warnings name them);
4. tidy     - adjacent rules differing in a test and its negation merged; the fast-path rule
              of a chain jumped to copied before the jump;
5. fastpath - `ct state established,related accept` moved to the front of base chains (or a
              copy excluding the blockers' packets put there);
6. ctsplit  - established packets of a base chain sent to a copy of it without the rules
              that test for other states, when that saves them two evaluations or more;
7. sets     - rules differing in one match merged into one set match (nft output only);
8. lookups  - rules differing in key fields (apart too, when they commute with the rules in
              between) become one (concatenated) set lookup, or one verdict map when their
              verdicts differ (nft output only);
9. dead     - again: merged sets can shadow later rules.
"""

from __future__ import annotations

from typing import Callable, Optional

from fwc import ir
from fwc.passes.ctsplit import split_established
from fwc.passes.dead import remove_dead_rules
from fwc.passes.fastpath import fast_path
from fwc.passes.inline import inline_chains
from fwc.passes.lookups import merge_lookups
from fwc.passes.notes import Note
from fwc.passes.sets import merge_sets
from fwc.passes.tidy import (drop_useless_rules, merge_complements, peel_fast_path,
                              resolve_trivial_jumps)

__all__ = ["optimize", "pipeline", "Note", "remove_dead_rules", "fast_path", "inline_chains",
           "merge_sets", "merge_lookups", "drop_useless_rules", "merge_complements", "peel_fast_path",
           "resolve_trivial_jumps", "split_established"]


def optimize(rs: ir.Ruleset, explain: Optional[Callable[[Note], None]] = None,
             target: str = "nft") -> ir.Ruleset:
    """Run every pass; `explain` receives each note once.  target 'iptables' skips the passes
    whose result iptables cannot write (address/port sets)."""
    seen: set = set()

    def sink(note: Note) -> None:
        if explain is not None and note not in seen:
            seen.add(note)
            explain(note)

    # the passes reason with the IP model of the simulator: bridge/netdev/arp tables stay as
    # is; so do tables that rewrite packet fields with `EXPR set VALUE` (FieldSet, from nft
    # input): the passes' disjointness proofs take the tested fields as fixed
    kept = [t for t in rs.tables if t.family in ir.L2_FAMILIES or _rewrites_fields(t)]
    for t in kept:
        if t.family not in ir.L2_FAMILIES:
            sink(Note("optimize", "info", f"table {t.family} {t.name} left as it is: a rule "
                      "rewrites a packet field ('set' statement), which the passes do not "
                      "reason about", t.loc))
    if kept:
        rest = optimize(ir.Ruleset(tuple(t for t in rs.tables if t not in kept)), explain, target)
        done = iter(rest.tables)
        return ir.Ruleset(tuple(t if t in kept else next(done) for t in rs.tables))
    for p in pipeline(target):
        rs = p(rs, sink)
    return rs


_SAFE_FIELDSETS = ("ct label", "meta mark", "ct mark", "meta priority", "meta nftrace")


def _rewrites_fields(t: ir.Table) -> bool:
    return any(isinstance(s, ir.FieldSet) and s.expr not in _SAFE_FIELDSETS
               for c in t.chains for r in c.rules for s in r.statements)


def pipeline(target: str = "nft") -> list:
    """The passes `optimize` runs, in order (tests run a prefix of it)."""
    passes = [drop_useless_rules, resolve_trivial_jumps, inline_chains, remove_dead_rules,
              merge_complements, peel_fast_path, fast_path, split_established]
    if target == "nft":
        passes += [merge_sets, merge_lookups, remove_dead_rules]
    return passes
