"""Differential properties without the kernel: the meaning of a random IR ruleset (as the
simulator reads it) survives both backends and their front ends, and the round trips are exact.

Rulesets and packet scenarios come from fwc.testing.strategies.  Examples per property:
default/ci profile small (seconds), FWC_HYPOTHESIS_PROFILE=long for soak runs.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends.nft import parse_nft
from fwc.testing.strategies import (budget, disagreements, iptables_leg, nft_leg, report, rulesets,
                                    scenarios)



def examples(ci: int, long: int) -> settings:
    return settings(max_examples=budget(ci, long), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@examples(60, 3000)
@given(st.data())
def test_simulated_meaning_survives_iptables_and_nft(data):
    rs = data.draw(rulesets(), label="ruleset")
    cases = data.draw(scenarios(rs), label="cases")
    results = {"ir": simulate(rs, cases),
               "iptables": simulate(iptables_leg(rs), cases),
               "nft": simulate(nft_leg(rs), cases)}
    diffs = disagreements(results, cases)
    assert not diffs, report(rs, diffs)


@examples(100, 5000)
@given(rulesets())
def test_iptables_round_trip_is_exact(rs):
    # the strategy draws matches in iptables-save order, so nothing may move or change
    assert iptables_leg(rs) == rs


@examples(100, 5000)
@given(rulesets())
def test_nft_text_is_a_fixpoint(rs):
    # nft drops what its syntax implies (`-p tcp` before `tcp dport`), so the IR is not kept
    # exactly; the text is: reading and writing it again changes nothing
    text = emit_nft(rs)
    assert emit_nft(parse_nft(text, "<emit_nft>")) == text


@examples(100, 5000)
@given(rulesets())
def test_both_routes_to_nft_give_the_same_text(rs):
    # IR -> nft and IR -> iptables text -> IR -> nft: the iptables front end adds nothing
    assert emit_nft(iptables_leg(rs)) == emit_nft(rs)


@examples(100, 5000)
@given(rulesets())
def test_iptables_text_is_a_fixpoint(rs):
    texts = emit_iptables(rs)
    assert emit_iptables(iptables_leg(rs)) == texts
