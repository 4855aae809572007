"""Differential properties without the kernel: the meaning of a random IR ruleset (as the
simulator reads it) survives both backends and their front ends, and the round trips are exact.

Rulesets and packet scenarios come from fwc.testing.strategies.  Examples per property:
default/ci profile small (seconds), FWC_HYPOTHESIS_PROFILE=long for soak runs.
"""

from __future__ import annotations

import attrs

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.frontends.nft import parse_nft
from fwc.testing.strategies import budget, differential, iptables_leg, report, rulesets, scenarios



def examples(ci: int, long: int) -> settings:
    # no explain phase (it re-runs failing examples under a tracer), one bug shrunk at a time
    return settings(max_examples=budget(ci, long), deadline=None, report_multiple_bugs=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@examples(60, 3000)
@given(st.data())
def test_simulated_meaning_survives_iptables_and_nft(data):
    rs = data.draw(rulesets(), label="ruleset")
    cases = data.draw(scenarios(rs), label="cases")
    results, diffs = differential(rs, cases)  # the simulator on IR, both round trips, -O
    assert not diffs, report(rs, diffs)
    assert set(results) == {"sim-ir", "sim-iptables", "sim-nft", "sim-O"}


def normalised(rs: ir.Ruleset, sort_matches: bool = True) -> ir.Ruleset:
    """The IR up to the spellings iptables has only one of: REJECT's default is
    port-unreachable, LOG's default level is 4 (warning), `! --ctdir` is written as the other
    direction; matches are a conjunction, so their order is free (sort_matches)."""
    def match(m):
        if isinstance(m, ir.CtDirection) and m.negate:
            return ir.CtDirection("REPLY" if m.direction == "ORIGINAL" else "ORIGINAL")
        return m

    def rule(r: ir.Rule) -> ir.Rule:
        v = ir.Reject("port-unreachable") if r.verdict == ir.Reject() else r.verdict
        st_ = tuple(attrs.evolve(s, level=4) if isinstance(s, ir.Log) and s.level is None else s
                    for s in r.statements)
        matches = tuple(match(m) for m in r.matches)
        matches = tuple(sorted(matches, key=repr)) if sort_matches else matches
        return attrs.evolve(r, matches=matches, statements=st_, verdict=v)
    return ir.Ruleset(tuple(
        attrs.evolve(t, chains=tuple(attrs.evolve(c, rules=tuple(rule(r) for r in c.rules))
                                     for c in t.chains)) for t in rs.tables))


@examples(100, 5000)
@given(rulesets())
def test_iptables_round_trip_is_exact(rs):
    assert normalised(iptables_leg(rs)) == normalised(rs)


@examples(100, 5000)
@given(rulesets())
def test_nft_text_is_a_fixpoint(rs):
    # the first reading may canonicalise (set elements sorted, `-p tcp` implied by `tcp dport`
    # dropped); after that, reading and writing the text again must change nothing
    once = emit_nft(parse_nft(emit_nft(rs), "<emit_nft 1>"))
    assert emit_nft(parse_nft(once, "<emit_nft 2>")) == once


@examples(100, 5000)
@given(rulesets())
def test_both_routes_to_nft_give_the_same_text(rs):
    # IR -> nft and IR -> iptables text -> IR -> nft: the iptables front end adds nothing
    assert emit_nft(normalised(iptables_leg(rs), False)) == emit_nft(normalised(rs, False))


@examples(100, 5000)
@given(rulesets())
def test_iptables_text_is_a_fixpoint(rs):
    texts = emit_iptables(rs)
    assert emit_iptables(iptables_leg(rs)) == texts
