"""The tidy passes: useless rules, final returns, complement merges, trivial jumps, fast-path
peeling; each alone, what it must refuse, and meaning kept (simulator, Hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc import ir
from fwc.passes import (drop_useless_rules, fast_path, merge_complements, optimize,
                        peel_fast_path, resolve_trivial_jumps)
from passes_util import (ACCEPT, DROP, EST, R, base, chain_of, dport, meaning_diff, rs_of, saddr,
                         state, user)

LOG = ir.Log(prefix="x ")


def iface(field, name, negate=False):
    return ir.Interface(field, name, negate)


def test_useless_rules_and_final_returns_go():
    rs = rs_of(base("INPUT", R(saddr("198.51.100.0/24"), line=1), R(verdict=ir.Jump("u"), line=2),
                    R(verdict=ir.Return(), line=3)),
               user("u", R(dport(22), verdict=ACCEPT, line=4), R(dport(23), line=5),
                    R(dport(25), verdict=ir.Return(), line=6), R(verdict=ir.Return(), line=7)))
    out = drop_useless_rules(rs)
    assert [r.loc.line for r in chain_of(out, "u").rules] == [4]
    assert [r.loc.line for r in chain_of(out, "INPUT").rules] == [2, 3]  # base: return = policy
    assert meaning_diff(rs, out) == []


def test_useless_rules_kept_when_they_do_something():
    rs = rs_of(base("INPUT", R(verdict=ir.Jump("u"))),
               user("u", R(dport(22), statements=(LOG,)), R(ir.Limit(1, "second")),
                    R(statements=(ir.Counter(),), verdict=ir.Return())))
    assert drop_useless_rules(rs) == rs


def test_complements_merge_on_interfaces_only_when_immutable_and_equal_effect():
    rs = rs_of(base("FORWARD",
                    R(iface("iifname", "d0"), iface("oifname", "d0", True), verdict=ACCEPT, line=1),
                    R(iface("iifname", "d0"), iface("oifname", "d0"), verdict=ACCEPT, line=2),
                    R(iface("iifname", "br"), iface("oifname", "x"), statements=(LOG,), line=3),
                    R(iface("iifname", "br"), iface("oifname", "x", True), statements=(LOG,),
                      line=4),
                    R(ir.Mark("meta", 1), verdict=DROP, line=5),
                    R(ir.Mark("meta", 1, negate=True), verdict=DROP, line=6)))
    out = merge_complements(rs)
    rules = chain_of(out, "FORWARD").rules
    assert rules[0].matches == (iface("iifname", "d0"),)
    assert rules[1].matches == (iface("iifname", "br"),) and rules[1].statements == (LOG,)
    assert len(rules) == 4  # marks are not merged
    assert meaning_diff(rs, out) == []


def test_terminal_rule_covered_by_the_next_one_goes():
    rs = rs_of(base("INPUT", R(iface("iifname", "a"), dport(22), verdict=ACCEPT, line=1),
                    R(iface("iifname", "a"), verdict=ACCEPT, line=2),
                    R(iface("iifname", "b"), dport(22), statements=(LOG,), line=3),
                    R(iface("iifname", "b"), statements=(LOG,), line=4)))
    out = merge_complements(rs)
    assert [r.loc.line for r in chain_of(out, "INPUT").rules] == [2, 3, 4]
    assert meaning_diff(rs, out) == []


def test_trivial_jumps_become_the_verdict():
    rs = rs_of(base("INPUT", R(state("ESTABLISHED", "RELATED"), verdict=ir.Jump("ok"), line=1),
                    R(dport(22), verdict=ir.Goto("no"), line=2),
                    R(dport(23), verdict=ir.Jump("logged"), line=3),
                    R(dport(24), verdict=ir.Jump("back"), line=4),  # return: not a verdict
                    R(verdict=DROP, line=5), policy="accept"),
               user("ok", R(verdict=ACCEPT)), user("no", R(verdict=DROP)),
               user("logged", R(statements=(LOG,), verdict=ACCEPT)),
               user("back", R(verdict=ir.Return()), R(verdict=ACCEPT)))
    out = resolve_trivial_jumps(rs)
    assert [r.verdict for r in chain_of(out, "INPUT").rules] == [
        ACCEPT, DROP, ir.Jump("logged"), ir.Jump("back"), DROP]
    assert meaning_diff(rs, out) == []


def test_peel_copies_fast_path_before_jump_and_fast_path_moves_it():
    rs = rs_of(base("INPUT", R(iface("iifname", "lo"), verdict=ACCEPT, line=1),
                    R(state("NEW"), dport(22), verdict=ACCEPT, line=2),
                    R(verdict=ir.Jump("block"), line=3)),
               base("OUTPUT", R(statements=(LOG,), line=5), R(verdict=ir.Jump("block"), line=6)),
               user("block", EST, R(state("NEW"), verdict=ACCEPT), R(verdict=DROP)))
    peeled = peel_fast_path(rs)
    assert chain_of(peeled, "INPUT").rules[2].matches == EST.matches
    out = fast_path(peeled)
    assert chain_of(out, "INPUT").rules[0].matches == EST.matches
    assert chain_of(out, "OUTPUT").rules[1].matches == EST.matches  # LOG blocks the move
    assert chain_of(out, "block").rules == chain_of(rs, "block").rules
    assert meaning_diff(rs, out) == []


# ----------------------------------------------------------------------------- property

_m = st.one_of(
    st.sampled_from(["eth0", "eth1", "lo"]).flatmap(
        lambda n: st.sampled_from([iface("iifname", n), iface("iifname", n, True),
                                   iface("oifname", n), iface("oifname", n, True)])),
    st.sampled_from(["198.51.100.0/25", "203.0.113.0/24"]).flatmap(
        lambda a: st.sampled_from([saddr(a), ir.Address("saddr", saddr(a).values, True)])),
    st.sampled_from([22, 80]).map(dport),
    st.sampled_from([state("NEW"), state("ESTABLISHED", "RELATED"), state("ESTABLISHED")]),
    st.sampled_from([ir.Mark("meta", 1), ir.Mark("meta", 1, negate=True)]),
)
_v = st.sampled_from([ACCEPT, DROP, None, ir.Return(), ir.Jump("u"), ir.Goto("t"),
                      ir.Jump("t")])
_s = st.sampled_from([(), (), (LOG,), (ir.SetMark("meta", 1),)])


@st.composite
def _rules(draw, jumps=True, size=7):
    rules = []
    for _ in range(draw(st.integers(0, size))):
        ms = draw(st.lists(_m, max_size=2))
        v, s = draw(_v), draw(_s)
        if not jumps and isinstance(v, (ir.Jump, ir.Goto)):
            v = DROP
        rules.append(R(*ms, statements=s, verdict=v))
        if draw(st.booleans()) and ms:  # a look-alike neighbour: negate or drop one test
            i = draw(st.integers(0, len(ms) - 1))
            m = ms[i]
            alt = list(ms)
            if hasattr(m, "negate") and draw(st.booleans()):
                alt[i] = type(m)(**{**{a.name: getattr(m, a.name) for a in m.__attrs_attrs__},
                                    "negate": not m.negate})
            else:
                del alt[i]
            rules.append(R(*alt, statements=s, verdict=v))
    return rules


@st.composite
def _ruleset(draw):
    u = draw(_rules(jumps=False, size=4))
    if draw(st.booleans()):
        u = [EST] + u
    t = draw(st.sampled_from([[R(verdict=ACCEPT)], [R(verdict=DROP)], [R(statements=(LOG,))],
                              [EST, R(verdict=DROP)], [R(verdict=ir.Return()), R(verdict=DROP)]]))
    pol = draw(st.sampled_from(["accept", "drop"]))
    return rs_of(base("INPUT", *draw(_rules()), policy=pol),
                 base("FORWARD", *draw(_rules()), policy=pol), user("u", *u), user("t", *t))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ruleset(), st.integers(0, 3))
def test_tidy_passes_keep_meaning(rs, seed):
    for p in (drop_useless_rules, merge_complements, resolve_trivial_jumps, peel_fast_path):
        assert meaning_diff(rs, p(rs), n=60, seed=seed) == [], p.__name__
    assert meaning_diff(rs, optimize(rs), n=60, seed=seed) == []


# ----------------------------------------------------------------------------- ct split


def test_ct_split_sends_established_packets_to_a_specialised_copy():
    from fwc.passes import split_established
    mangle = ir.Chain("PREROUTING", (
        R(statements=(LOG,), line=1),
        R(state("NEW"), statements=(ir.SetMark("meta", 2),), line=2),
        R(state("NEW"), saddr("198.51.100.0/24"), statements=(ir.SetMark("meta", 1),), line=3),
        R(state("NEW", "ESTABLISHED"), ir.Proto(frozenset({17})),
          statements=(ir.SetMark("meta", 3),), line=4),
        R(state("ESTABLISHED", negate=True), verdict=DROP, line=5),
        R(ir.Limit(1, "second"), state("NEW"), verdict=ACCEPT, line=6)),
        ir.iptables_base_hook("mangle", "PREROUTING"))
    rs = rs_of(mangle, name="mangle")
    got = []
    out = split_established(rs, got.append)
    head = chain_of(out, "PREROUTING").rules[0]
    assert head.matches == (state("ESTABLISHED"),) and head.verdict == ir.Goto("PREROUTING_est")
    est = chain_of(out, "PREROUTING_est").rules
    assert [r.loc.line for r in est] == [1, 4, 6]
    assert est[1].matches == (ir.Proto(frozenset({17})),)  # its state test always holds
    assert any("PREROUTING_est" in n.message for n in got)
    assert meaning_diff(rs, out) == []


def test_ct_split_only_when_it_saves_two_evaluations_and_never_in_raw_or_nat():
    from fwc.passes import split_established
    cheap = rs_of(base("INPUT", EST, R(state("NEW"), dport(22), verdict=ACCEPT),
                       R(state("NEW"), dport(80), verdict=ACCEPT)))
    assert split_established(cheap) == cheap  # established packets stop at the first rule
    rules = (R(state("NEW"), statements=(LOG,)), R(state("NEW"), statements=(LOG,)),
             R(verdict=DROP))
    for table, chain in (("raw", "PREROUTING"), ("nat", "PREROUTING")):
        rs = rs_of(ir.Chain(chain, rules, ir.iptables_base_hook(table, chain)), name=table)
        assert split_established(rs) == rs


# ----------------------------------------------------------------------------- conditional copy


def test_fast_path_copy_excludes_the_blockers_packets():
    lo = iface("iifname", "lo")
    rs = rs_of(base("INPUT", R(lo, verdict=ACCEPT, line=1),
                    R(iface("iifname", "lo", True),
                      ir.Address("daddr", saddr("127.0.0.0/8").values),
                      verdict=ir.Reject(), line=2),
                    R(state("NEW"), dport(22), verdict=ACCEPT, line=3),
                    EST))
    out = fast_path(rs)
    rules = chain_of(out, "INPUT").rules
    assert rules[0].matches == (ir.Address("daddr", saddr("127.0.0.0/8").values, True),
                                state("ESTABLISHED", "RELATED"))
    assert EST in rules[1:]
    assert meaning_diff(rs, out) == []
    # a blocker without a field to exclude it by (a log of everything): no copy
    rs2 = rs_of(base("INPUT", R(statements=(LOG,), line=1), EST))
    assert fast_path(rs2) == rs2
    # a stateful test before the excluding match: the blocker must still see the packet
    rs3 = rs_of(base("INPUT", R(ir.Limit(1, "second"), saddr("192.0.2.0/24"), verdict=DROP), EST))
    assert fast_path(rs3) == rs3


@st.composite
def _chain_before_fast_path(draw):
    rules = draw(_rules(jumps=False))
    blockers = draw(st.lists(st.sampled_from([
        R(ir.Address("daddr", saddr("127.0.0.0/8").values), verdict=ir.Reject()),
        R(iface("iifname", "eth1"), statements=(LOG,)),
        R(saddr("198.51.100.0/25"), ir.Mark("meta", 1), verdict=DROP),
        R(ir.Mark("meta", 1), saddr("198.51.100.0/25"), statements=(ir.SetMark("meta", 2),)),
        R(ir.Limit(1, "second"), saddr("198.51.100.0/25"), verdict=DROP)]), max_size=3))
    rules = blockers + rules + [EST] + draw(_rules(jumps=False, size=2))
    pol = draw(st.sampled_from(["accept", "drop"]))
    return rs_of(base("INPUT", *rules, policy=pol),
                 ir.Chain("PREROUTING", tuple(rules), ir.iptables_base_hook("mangle",
                                                                             "PREROUTING")))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chain_before_fast_path(), st.integers(0, 3))
def test_fast_path_copies_and_ct_split_keep_meaning(rs, seed):
    from fwc.passes import split_established
    out = fast_path(rs)
    assert meaning_diff(rs, out, n=60, seed=seed) == []
    out2 = split_established(out)
    assert meaning_diff(rs, out2, n=60, seed=seed) == []
