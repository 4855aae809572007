"""The lookups pass (concatenated sets, verdict maps): what it merges, what it must refuse, and
meaning kept (simulator on generated cases, Hypothesis over runs of look-alike rules)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc import ir
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, simulate
from fwc.frontends import parse_text
from fwc.packet import Case, packet_from_dict
from fwc.passes import merge_lookups, optimize
from passes_util import (ACCEPT, DROP, R, base, chain_of, dport, effects, meaning_diff, rs_of,
                         saddr, user)

TCP, UDP = ir.Proto(frozenset({6})), ir.Proto(frozenset({17}))


def iif(name):
    return ir.Interface("iifname", name)


def daddr(net):
    return ir.Address("daddr", saddr(net).values)


def test_dispatch_table_becomes_vmap():
    rs = rs_of(base("INPUT", R(iif("eth0"), verdict=ir.Jump("A"), line=1),
                    R(iif("eth1"), verdict=ir.Jump("B"), line=2),
                    R(iif("eth2"), verdict=DROP, line=3),
                    R(verdict=ACCEPT, line=4)),
               user("A", R(dport(22), verdict=ACCEPT)), user("B", R(verdict=ir.Return())))
    got = []
    out = merge_lookups(rs, got.append)
    rules = chain_of(out, "INPUT").rules
    assert len(rules) == 2
    vm = rules[0].verdict
    assert isinstance(vm, ir.VerdictMap) and vm.keys == ("iifname",)
    assert dict(vm.elements) == {("eth0",): ir.Jump("A"), ("eth1",): ir.Jump("B"),
                                 ("eth2",): DROP}
    assert any("verdict map" in n.message for n in got)
    assert meaning_diff(rs, out) == []
    assert 'iifname vmap { "eth0" : jump A' in emit_nft(out)


def test_ports_of_two_protocols_share_one_vmap():
    rs = rs_of(base("INPUT", R(TCP, dport(22), verdict=ACCEPT, line=1),
                    R(UDP, dport(53, proto="udp"), verdict=ACCEPT, line=2),
                    R(TCP, dport(23), verdict=DROP, line=3)))
    out = merge_lookups(rs)
    (rule,) = chain_of(out, "INPUT").rules
    assert rule.verdict.keys == ("ip protocol", "th dport")
    assert meaning_diff(rs, out) == []
    text = emit_nft(out)
    assert "ip protocol . th dport vmap" in text
    # the nft front end reads it back as the same lookup
    back = parse_text(text, "<t>", "nft")
    assert meaning_diff(rs, back) == []


def test_two_fields_become_a_concatenation():
    rules = [R(iif("eth0"), saddr(s), daddr(d), verdict=ACCEPT, line=i)
             for i, (s, d) in enumerate([("192.0.2.1/32", "192.0.2.2/32"),
                                         ("192.0.2.3/32", "192.0.2.2/32"),
                                         ("192.0.2.1/32", "198.51.100.0/25")])]
    rs = rs_of(base("FORWARD", *rules, R(verdict=DROP)))
    out = merge_lookups(rs)
    first = chain_of(out, "FORWARD").rules[0]
    sm = first.matches[-1]
    assert isinstance(sm, ir.SetMatch) and sm.keys == ("ip saddr", "ip daddr")
    assert len(sm.elements) == 3 and iif("eth0") in first.matches
    assert meaning_diff(rs, out) == []
    assert "ip saddr . ip daddr {" in emit_nft(out)


def test_concatenation_keys_follow_the_first_rules_field_order():
    pairs = [("192.0.2.1/32", "192.0.2.2/32"), ("192.0.2.3/32", "192.0.2.4/32")]
    # written daddr first: the key is `ip daddr . ip saddr`, elements in that order
    rs = rs_of(base("FORWARD", *[R(daddr(d), saddr(s), verdict=ACCEPT) for s, d in pairs]))
    (rule,) = chain_of(merge_lookups(rs), "FORWARD").rules
    assert rule.matches[-1].keys == ("ip daddr", "ip saddr")
    assert "ip daddr . ip saddr { 192.0.2.2 . 192.0.2.1, 192.0.2.4 . 192.0.2.3 }" in \
        emit_nft(merge_lookups(rs))
    # members written in different orders: the first rule's order decides
    rs = rs_of(base("FORWARD", R(saddr("192.0.2.1/32"), TCP, dport(22), verdict=ACCEPT),
                    R(dport(80), saddr("192.0.2.3/32"), verdict=ACCEPT)))
    (rule,) = chain_of(merge_lookups(rs), "FORWARD").rules
    assert rule.matches[-1].keys == ("ip saddr", "tcp dport")
    assert meaning_diff(rs, merge_lookups(rs)) == []
    # the protocol a port implies comes before the port, as in `-p udp --dport 53`
    rs = rs_of(base("INPUT", R(dport(53, proto="udp"), iif("eth0"), verdict=ACCEPT),
                    R(dport(22), iif("eth1"), verdict=DROP)))
    vm = chain_of(merge_lookups(rs), "INPUT").rules[0].verdict
    assert vm.keys == ("ip protocol", "th dport", "iifname")
    assert meaning_diff(rs, merge_lookups(rs)) == []
    # the iptables front end puts `-p` before the addresses; the protocol still goes with the
    # port, as `ip daddr X tcp dport 22` reads
    rs = rs_of(base("INPUT", R(TCP, daddr("192.0.2.1/32"), dport(22), verdict=ACCEPT),
                    R(UDP, daddr("192.0.2.2/32"), dport(53, proto="udp"), verdict=DROP)))
    vm = chain_of(merge_lookups(rs), "INPUT").rules[0].verdict
    assert vm.keys == ("ip daddr", "ip protocol", "th dport")
    assert meaning_diff(rs, merge_lookups(rs)) == []


def test_single_field_kinds_the_sets_pass_cannot_merge():
    rs = rs_of(base("INPUT", R(ir.Icmp("ip", 8), verdict=ACCEPT), R(ir.Icmp("ip", 0),
                                                                    verdict=ACCEPT),
                    R(ir.Icmp("ip", 11), verdict=ACCEPT)))
    out = merge_lookups(rs)
    (rule,) = chain_of(out, "INPUT").rules
    assert rule.matches[-1].keys == ("icmp type",)
    assert meaning_diff(rs, out) == []


def test_refuses_overlap_statements_in_vmaps_mutable_keys_and_stateful():
    cases = [
        # overlapping addresses with different verdicts: the first rule wins in the chain
        [R(saddr("198.51.100.0/24"), verdict=DROP), R(saddr("198.51.100.7/32"), verdict=ACCEPT)],
        # statements cannot go in a verdict map
        [R(dport(22), statements=(ir.Log(),), verdict=ACCEPT), R(dport(23), verdict=DROP)],
        # the first rule's mark change makes the second one match too
        [R(ir.Mark("meta", 1), statements=(ir.SetMark("meta", 2),)),
         R(ir.Mark("meta", 2), statements=(ir.SetMark("meta", 2),))],
        # a jump may change the mark the next rule tests
        [R(ir.Mark("meta", 1), verdict=ir.Jump("u")), R(ir.Mark("meta", 2), verdict=DROP)],
        # stateful
        [R(dport(22), ir.Limit(1, "second"), verdict=ACCEPT),
         R(dport(23), ir.Limit(1, "second"), verdict=DROP)],
        # reject is no vmap verdict
        [R(dport(22), verdict=ir.Reject()), R(dport(23), verdict=DROP)],
    ]
    for rules in cases:
        rs = rs_of(base("INPUT", *rules), user("u", R(statements=(ir.SetMark("meta", 2),))))
        assert merge_lookups(rs) == rs, rules


def test_merge_across_rules_that_commute():
    # disjoint from the members it passes (another interface): a dispatch table with a rule
    # for eth2 in between still becomes one verdict map, placed at the first member
    between = R(iif("eth2"), TCP, dport(22), verdict=DROP, line=2)
    rs = rs_of(base("INPUT", R(iif("eth0"), verdict=ir.Jump("A"), line=1), between,
                    R(iif("eth1"), verdict=ir.Jump("B"), line=3), R(verdict=ACCEPT, line=4)),
               user("A", R(dport(22), verdict=ACCEPT)), user("B", R(verdict=ir.Return())))
    got = []
    out = merge_lookups(rs, got.append)
    rules = chain_of(out, "INPUT").rules
    assert len(rules) == 3 and rules[1] == between
    assert dict(rules[0].verdict.elements) == {("eth0",): ir.Jump("A"), ("eth1",): ir.Jump("B")}
    assert any("1 of them moved up past commuting rules" in n.message for n in got)
    assert meaning_diff(rs, out) == []
    # the same terminal outcome: an accept in between does what the accept members do
    pairs = [("192.0.2.1/32", "192.0.2.2/32"), ("192.0.2.3/32", "192.0.2.4/32"),
             ("192.0.2.5/32", "192.0.2.6/32")]
    members = [R(saddr(s), daddr(d), verdict=ACCEPT, line=i) for i, (s, d) in enumerate(pairs)]
    rs = rs_of(base("INPUT", members[0], R(TCP, dport(22), verdict=ACCEPT), members[1],
                    R(iif("lo"), verdict=ACCEPT), members[2]))
    out = merge_lookups(rs)
    rules = chain_of(out, "INPUT").rules
    assert len(rules) == 3 and len(rules[0].matches[-1].elements) == 3
    assert meaning_diff(rs, out) == []


def _outcome(rs, probe: dict, setup: tuple = ()):
    """Verdict and effects of one hand-made case (the witness that a merge would be wrong)."""
    pk = [packet_from_dict(p, i, i - 1) for i, p in enumerate(setup + (probe,))]
    (res,) = simulate(rs, [Case("w", tuple(pk[:-1]), pk[-1])], SimOptions(cache=False))
    return res.verdict, effects(res)


def test_no_merge_across_a_rule_that_does_not_commute():
    m1 = R(saddr("192.0.2.1/32"), daddr("192.0.2.2/32"), verdict=ACCEPT, line=1)
    m2 = R(saddr("192.0.2.3/32"), daddr("192.0.2.4/32"), verdict=ACCEPT, line=3)
    j1, j2 = R(iif("eth0"), verdict=ir.Jump("A"), line=1), R(iif("eth1"), verdict=DROP, line=3)
    tcp_m2 = {"src": "192.0.2.3", "dst": "192.0.2.4", "dport": 22}
    tcp_eth1 = {"iif": "eth1", "dport": 22}
    cases = [
        # a drop of tcp/22 decides tcp/22 from 192.0.2.3 before the accept did
        ([m1, R(TCP, dport(22), verdict=DROP, line=2), m2], tcp_m2, ()),
        # the same outcome, but stateful: m2's packets drain the token bucket of the rule in
        # between (the simulator takes every bucket to be within its rate: no witness)
        ([m1, R(TCP, ir.Limit(1, "minute", 2), verdict=ACCEPT, line=2), m2], None, ()),
        # a statement runs on m2's packets first
        ([m1, R(TCP, statements=(ir.Log(prefix="x "),), verdict=ACCEPT, line=2), m2],
         tcp_m2, ()),
        # an accept overlapping the drop member: eth1's tcp/22 packets were accepted
        ([j1, R(TCP, dport(22), verdict=ACCEPT, line=2), j2], tcp_eth1, ()),
        # a jump in between: its chain decides eth1's tcp/22 packets
        ([j1, R(verdict=ir.Jump("A"), line=2), j2], tcp_eth1, ()),
    ]
    for rules, probe, setup in cases:
        rs = rs_of(base("INPUT", *rules), user("A", R(dport(22), verdict=ACCEPT)))
        assert merge_lookups(rs) == rs, rules
        if probe is None:
            continue
        # not merely cautious: with the third rule moved up (what the merge needs), the
        # witness packet gets another verdict or other effects
        moved = rs_of(base("INPUT", rules[0], rules[2], rules[1]),
                      user("A", R(dport(22), verdict=ACCEPT)))
        assert _outcome(rs, probe, setup) != _outcome(moved, probe, setup), rules


def test_non_terminal_merge_on_fields_the_statements_keep():
    rs = rs_of(base("PREROUTING" if False else "INPUT",
                    R(ir.Mark("ct", 1), statements=(ir.CopyMark("meta"),)),
                    R(ir.Mark("ct", 2), statements=(ir.CopyMark("meta"),)),
                    R(ir.Mark("meta", 2), verdict=DROP)))
    out = merge_lookups(rs)
    assert len(chain_of(out, "INPUT").rules) == 2
    assert meaning_diff(rs, out) == []


def test_optimize_turns_kube_style_services_into_one_vmap():
    svc = [R(daddr(f"203.0.113.{i}/32"), TCP, dport(80), verdict=ir.Jump(f"S{i % 3}"), line=i)
           for i in range(1, 40)]
    rs = rs_of(base("INPUT", *svc, R(verdict=ACCEPT)),
               *[user(f"S{k}", R(saddr("192.0.2.0/24"), verdict=DROP)) for k in range(3)])
    out = optimize(rs)
    assert isinstance(chain_of(out, "INPUT").rules[0].verdict, ir.VerdictMap)
    assert meaning_diff(rs, out) == []


# ----------------------------------------------------------------------------- property

_IFACES = ["eth0", "eth1", "lo"]
_NETS = ["198.51.100.0/25", "198.51.100.7/32", "203.0.113.0/24", "192.0.2.1/32"]
# marks twice as likely: they are the keys a matching rule (or its jump) can change
_field = st.sampled_from(["iif", "saddr", "daddr", "port", "uport", "icmp", "mark", "mark",
                          "ctmark", "state"])


def _value(kind, i):
    if kind == "iif":
        return iif(_IFACES[i % 3])
    if kind == "saddr":
        return saddr(_NETS[i % 4])
    if kind == "daddr":
        return daddr(_NETS[i % 4])
    if kind == "port":
        return dport([22, 80, 443, 25][i % 4])
    if kind == "uport":
        return dport([53, 123][i % 2], proto="udp")
    if kind == "icmp":
        return ir.Icmp("ip", [0, 8, 3][i % 3])
    if kind == "mark":
        return ir.Mark("meta", i % 3)
    if kind == "ctmark":
        return ir.Mark("ct", 1 + i % 2)
    return ir.CtState(frozenset([["NEW"], ["ESTABLISHED"], ["INVALID", "RELATED"]][i % 3]))


_verdicts = st.sampled_from([ACCEPT, DROP, ir.Return(), ir.Jump("u1"), ir.Goto("u1"), None,
                             None, ir.Reject()])
_stmts = st.sampled_from([(), (), (ir.Log(prefix="x "),), (ir.SetMark("meta", 1),),
                          (ir.SetMark("meta", 2),), (ir.CopyMark("meta"),),
                          (ir.SetMark("ct", 1),)])


@st.composite
def _run(draw):
    """Rules sharing a template, varying one or two fields."""
    kinds = draw(st.lists(_field, min_size=1, max_size=2, unique=True))
    common = draw(st.lists(st.sampled_from([TCP, iif("eth0"), ir.Mark("meta", 1)]), max_size=1))
    same_effect = draw(st.booleans())
    stmts, verdict = draw(_stmts), draw(_verdicts)
    if draw(st.integers(0, 3)) == 0:  # rules on the mark that change the mark or jump
        kinds, same_effect = ["mark"], True
        stmts = draw(st.sampled_from([(ir.SetMark("meta", 1),), (ir.SetMark("meta", 2),), ()]))
        verdict = draw(st.sampled_from([None, ir.Jump("u1")])) if stmts else ir.Jump("u1")
    rules = []
    for _ in range(draw(st.integers(2, 5))):
        ms = [_value(k, draw(st.integers(0, 3))) for k in kinds]
        if not same_effect:
            stmts, verdict = draw(_stmts), draw(_verdicts)
        rules.append(R(*common, *ms, statements=stmts, verdict=verdict))
    return rules


@st.composite
def _ruleset(draw):
    runs = draw(st.lists(_run(), min_size=1, max_size=3))
    rules = [r for run in runs for r in run]
    u1 = draw(st.lists(_run(), max_size=1))
    u1 = [R(*r.matches, statements=r.statements,
            verdict=DROP if isinstance(r.verdict, (ir.Jump, ir.Goto)) else r.verdict)
          for run in u1 for r in run]
    pol = draw(st.sampled_from(["accept", "drop"]))
    return rs_of(base("INPUT", *rules, policy=pol), base("FORWARD", *rules, policy=pol),
                 user("u1", *u1, R(ir.Mark("meta", 1), statements=(ir.SetMark("meta", 2),))))


@st.composite
def _filler(draw):
    """A rule to put between members: often disjoint from them (another interface, ICMP, a
    state), or accepting like them, or neither."""
    first = draw(st.sampled_from([iif("eth2"), iif("eth1"), ir.Proto(frozenset({1})), TCP, UDP,
                                  ir.CtState(frozenset({"NEW"})), saddr("203.0.113.0/24")]))
    more = [_value(draw(_field), draw(st.integers(0, 3)))] if draw(st.booleans()) else []
    return R(first, *more, statements=draw(_stmts), verdict=draw(_verdicts))


@st.composite
def _interleaved(draw):
    """Runs and fillers shuffled together: members apart, other rules in between."""
    rules = [r for run in draw(st.lists(_run(), min_size=1, max_size=2)) for r in run]
    fillers = draw(st.lists(_filler(), min_size=1, max_size=4))
    if draw(st.booleans()):  # members on eth0, some fillers on eth3: disjoint by construction
        rules = [R(iif("eth0"), *r.matches, statements=r.statements, verdict=r.verdict)
                 for r in rules]
        fillers = [R(iif("eth3"), *f.matches, statements=f.statements, verdict=f.verdict)
                   if draw(st.booleans()) else f for f in fillers]
    for _ in range(draw(st.integers(0, 2))):  # a member's sibling with its own effect
        r = draw(st.sampled_from(rules))
        fillers.append(R(*r.matches[:-1], *r.matches[-1:] if draw(st.booleans()) else (),
                         ir.Proto(frozenset({1})) if draw(st.booleans()) else iif("eth2"),
                         statements=draw(_stmts), verdict=draw(_verdicts)))
    rules = draw(st.permutations(rules + fillers))
    pol = draw(st.sampled_from(["accept", "drop"]))
    return rs_of(base("INPUT", *rules, policy=pol),
                 user("u1", R(ir.Mark("meta", 1), statements=(ir.SetMark("meta", 2),))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_interleaved(), st.integers(0, 3))
def test_lookups_keep_meaning_on_interleaved_runs(rs, seed):
    out = merge_lookups(rs)
    assert meaning_diff(rs, out, n=80, seed=seed) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ruleset(), st.integers(0, 3))
def test_lookups_keep_meaning_on_random_runs(rs, seed):
    out = merge_lookups(rs)
    assert meaning_diff(rs, out, n=80, seed=seed) == []
    out = optimize(rs)
    assert meaning_diff(rs, out, n=80, seed=seed) == []


def test_the_element_index_accepts_exactly_the_disjoint_members():
    """_Elements (with its first-key index) against comparing every pair of elements, on
    random members of ranges, prefixes of two families and names."""
    import ipaddress
    import random
    from fwc.passes.keys import elements_overlap
    from fwc.passes.lookups import _Elements
    rnd = random.Random(9)

    def value(k):  # (one kind per key: a set's key has one type)
        if k == 0:
            lo = rnd.randrange(0, 60)
            return ir.Range(lo, lo + rnd.randrange(0, 8))
        if k == 1:
            return ipaddress.ip_network(f"10.0.{rnd.randrange(0, 8)}.0/{rnd.choice((22, 24))}",
                                        strict=False)
        if k == 2:
            return ipaddress.ip_network(f"2001:db8:{rnd.randrange(0, 4)}::/{rnd.choice((48, 64))}",
                                        strict=False)
        return rnd.choice(("eth0", "eth1", "lo"))
    for _ in range(400):
        kinds = [rnd.randrange(4) for _ in range(rnd.randrange(1, 3))]
        e, kept = _Elements(), []
        for _ in range(rnd.randrange(1, 12)):
            new = [tuple(value(k) for k in kinds) for _ in range(rnd.randrange(1, 3))]
            ok = all(not elements_overlap(a, b) for a in kept for b in new) and \
                all(not elements_overlap(a, b) for i, a in enumerate(new) for b in new[i + 1:])
            assert e.try_add(new) == ok, (kept, new)
            if ok:
                kept += new
