"""iptables_lower: nft-flavoured IR as iptables rules, one packet family at a time."""

import ipaddress

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.iptables_lower import describe, lower_rule
from fwc.errors import ErrorGroup, Unsupported
from fwc.frontends.nft import parse_nft

N = ipaddress.ip_network


def rule(*matches, verdict=ir.Accept()):
    return ir.Rule(tuple(matches), (), verdict)


def fm(expr, *values, negate=False):
    return ir.FieldMatch(expr, values, negate=negate)


@pytest.mark.parametrize("match,ip,ip6", [
    (fm("meta nfproto", "ipv4"), [()], []),
    (fm("ip version", 4), [()], []),
    (fm("ip version", 4, negate=True), [], []),  # nft tests the family first
    (fm("ip6 version", 6), [], [()]),
    (fm("ip protocol", 17), [(ir.Proto(frozenset({17})),)], []),
    (fm("ip protocol", 6, negate=True), [(ir.Proto(frozenset({6}), True),)], []),
    (fm("meta iif", "lo"), [(ir.Interface("iifname", "lo"),)],
     [(ir.Interface("iifname", "lo"),)]),
    (fm("icmp type", "echo-request", 13), [(ir.Icmp("ip", 8),), (ir.Icmp("ip", 13),)], []),
    (ir.Address("saddr", (N("10.0.0.0/25"), N("10.0.0.128/25"), N("10.0.0.7/32"),
                          N("2001:db8::/32"))),
     [(ir.Address("saddr", (N("10.0.0.0/24"),)),)], [(ir.Address("saddr", (N("2001:db8::/32"),)),)]),
])
def test_alternatives_per_family(match, ip, ip6):
    for fam, want in (("ip", ip), ("ip6", ip6)):
        assert [r.matches for r in lower_rule(rule(match), fam, {})] == want


def test_named_set_of_ports_becomes_one_multiport_rule():
    sets = {"p": ir.NamedSet("p", ("inet_service",), frozenset({"interval"}),
                             ((ir.Range(80, 81),), (ir.Range(82, 82),), (443,)))}
    m = ir.SetMatch(("tcp dport",), "p")
    assert [r.matches for r in lower_rule(rule(m), "ip", sets)] == \
        [(ir.Port("tcp", "dport", (ir.Range(80, 82), ir.Range(443, 443))),)]


def test_a_dynamic_named_set_stays_and_is_refused_by_name():
    sets = {"d": ir.NamedSet("d", ("ipv4_addr",), frozenset({"dynamic"}))}
    m = ir.SetMatch(("ip saddr",), "d")
    assert [r.matches for r in lower_rule(rule(m), "ip", sets)] == [(m,)]
    assert describe(m) == "'ip saddr @d'"


def test_split_with_a_stateful_match_is_refused():
    r = rule(fm("icmp type", 8, 13), ir.Limit(5, "second", 5))
    with pytest.raises(Unsupported):
        lower_rule(r, "ip", {})


def test_inet_refusal_names_the_nft_form_once():
    rs = parse_nft("table inet filter { chain INPUT { type filter hook input priority filter;\n"
                   "ip6 flowlabel 5 accept\n } }", "t.nft")
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(rs)
    msgs = [x.message for x in e.value.errors]
    assert msgs == ["'ip6 flowlabel 5' cannot be expressed in iptables"]


def test_user_chain_reached_only_from_unplaceable_base_chains_adds_no_error():
    # (at 200 the chain runs after input's NAT core, at 100: no iptables table is there)
    rs = parse_nft("table inet fw { chain in { type filter hook input priority 200;\n"
                   "jump sub\n }\n chain sub { accept\n } }", "t.nft")
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(rs)
    assert [x.loc.line for x in e.value.errors] == [1]


def test_icmp_type_code_pairs_become_one_rule_each():
    m = ir.SetMatch(("icmpv6 type", "icmpv6 code"), None, ((130, 0), (2, 0), (4, 1)))
    assert [r.matches for r in lower_rule(rule(m), "ip6", {})] == [
        (ir.Icmp("ip6", 2, ir.Range(0, 0)),), (ir.Icmp("ip6", 4, ir.Range(1, 1)),),
        (ir.Icmp("ip6", 130, ir.Range(0, 0)),)]
    assert lower_rule(rule(m), "ip", {}) == []


def test_named_icmp_pair_set_uses_its_elements():
    sets = {"mld": ir.NamedSet("mld", ("icmpv6_type", "icmpv6_code"), frozenset(),
                               ((130, 0), (143, 0)))}
    m = ir.SetMatch(("icmpv6 type", "icmpv6 code"), "mld")
    assert [r.matches for r in lower_rule(rule(m), "ip6", sets)] == [
        (ir.Icmp("ip6", 130, ir.Range(0, 0)),), (ir.Icmp("ip6", 143, ir.Range(0, 0)),)]


def test_split_with_a_stateful_match_shares_one_chain_when_exact():
    from fwc.backends.iptables_lower import Split
    lim = ir.Limit(5, "second", 5)
    low = lower_rule(rule(fm("icmp type", 8, 13), lim), "ip", {}, allow_split=True)
    assert isinstance(low, Split)
    assert low.pieces == ((ir.Icmp("ip", 8),), (ir.Icmp("ip", 13),))
    assert low.shared.matches == (lim,) and low.shared.verdict == ir.Accept()
    # the limit first: it also counts packets of other types, which no split can keep
    with pytest.raises(Unsupported):
        lower_rule(rule(lim, fm("icmp type", 8, 13)), "ip", {}, allow_split=True)
    # goto / return mean something else one chain deeper
    for v in (ir.Goto("x"), ir.Return()):
        with pytest.raises(Unsupported):
            lower_rule(rule(fm("icmp type", 8, 13), lim, verdict=v), "ip", {}, allow_split=True)


def test_l4proto_icmp_of_an_inet_table_stays_in_both_families():
    """`meta l4proto ipv6-icmp` in an inet table also matches an IPv4 packet carrying protocol
    58 (nft tests only the protocol): it is written for both families, not dropped from one."""
    rs = parse_nft("table inet filter { chain INPUT { type filter hook input priority filter;\n"
                   "meta l4proto ipv6-icmp accept\n } }", "t.nft")
    out = emit_iptables(rs)
    assert "-p ipv6-icmp -j ACCEPT" in out["ip"] and "-p ipv6-icmp -j ACCEPT" in out["ip6"]


def test_empty_accepting_base_chains_without_an_iptables_hook_are_left_out():
    rs = parse_nft("table ip nat {\n chain pre { type nat hook prerouting priority 0; }\n"
                   " chain post { type nat hook postrouting priority srcnat;\n"
                   "  oifname \"ppp0\" masquerade }\n}\n"
                   "table ip f { chain c { type filter hook input priority 10; } }", "w.nft")
    out = emit_iptables(rs)["ip"]
    assert "-A POSTROUTING -o ppp0 -j MASQUERADE" in out and "-A PREROUTING" not in out
    # with a rule it would change packets: refused
    rs = parse_nft("table ip f { chain c { type filter hook input priority 200; drop } }", "w.nft")
    with pytest.raises(ErrorGroup):
        emit_iptables(rs)


def test_nat_chains_at_any_priority_are_the_nat_table_and_spare_empty_ones_are_left_out():
    """A nat chain's priority only orders it among nat chains (they all run in the NAT core's
    hook): `priority 0` is iptables' nat table. Next to a written nat chain of the same hook an
    empty accepting one adds nothing (iptables has one chain per hook); alone it is written,
    so the output registers that NAT hook as the input did."""
    rs = parse_nft("table ip t {\n chain a { type nat hook prerouting priority 0; }\n"
                   " chain b { type nat hook prerouting priority 5; tcp dport 1 dnat to 192.0.2.1 }\n"
                   " chain c { type nat hook postrouting priority 0; }\n"
                   " chain d { type nat hook postrouting priority 0; }\n}\n", "n.nft")
    out = emit_iptables(rs)["ip"]
    assert out.count(":PREROUTING ACCEPT") == out.count(":POSTROUTING ACCEPT") == 1
    assert "-A PREROUTING -p tcp -m tcp --dport 1 -j DNAT --to-destination 192.0.2.1" in out
    rs = parse_nft("table ip t {\n chain b { type nat hook prerouting priority 0; tcp dport 1 "
                   "dnat to 192.0.2.1 }\n chain e { type nat hook prerouting priority 10; "
                   "tcp dport 2 dnat to 192.0.2.2 }\n}\n", "n.nft")
    with pytest.raises(ErrorGroup, match="two chains map onto nat PREROUTING"):
        emit_iptables(rs)


@pytest.mark.parametrize("prio,others,table", [
    ("filter + 10", "", "filter"), ("1", "", "filter"), ("-140", "", "mangle"),
    ("40", "", "security"), ("-60", "", "filter"), ("200", "", None),
    # another base chain of the hook in between: the order would change
    ("10", "\n chain o { type filter hook input priority 5; }", "security"),  # (o: filter)
    ("10", "\n chain o { type filter hook input priority 5; }\n"
           " chain p { type filter hook input priority 30; }", None),
    ("10", "\n chain o { type filter hook input priority 20; }", "filter"),
])
def test_a_filter_chain_off_its_tables_priority_is_that_table_when_nothing_lies_between(
        prio, others, table):
    """firewalld's `priority filter + 10`: the iptables filter table runs where it does when
    no kernel step (the NAT core at 100 on input) and no other base chain lies between."""
    rs = parse_nft("table ip t { chain c { type filter hook input priority " + prio
                   + "; policy drop;\n tcp dport 22 accept\n }" + others + " }", "p.nft")
    if table is None:
        with pytest.raises(ErrorGroup, match="no iptables equivalent"):
            emit_iptables(rs)
        return
    out = emit_iptables(rs)["ip"]
    assert f"*{table}\n:INPUT DROP" in out and "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in out


def test_a_split_rules_shared_part_is_lowered_too():
    """`ip protocol icmp icmp type { 0, 8 } limit rate over ...`: the pieces are the ICMP types,
    the shared chain holds the rest as iptables says it (`ip protocol icmp` was left as an nft
    field there, and the rule was refused)."""
    from fwc.backends.iptables_lower import Split
    lim = ir.Limit(7, "second", 4, True)
    low = lower_rule(rule(fm("ip protocol", 1), fm("icmp type", 0, 8), lim), "ip", {},
                     allow_split=True)
    assert isinstance(low, Split) and low.shared.matches == (ir.Proto(frozenset({1})), lim)
    assert lower_rule(rule(fm("ip protocol", 1), fm("icmp type", 0, 8), lim), "ip6", {},
                      allow_split=True) == []


def test_socket_transparent_is_the_nowildcard_socket_match():
    """`socket transparent 1` / `0-1` are how fwc writes -m socket --nowildcard [--transparent]
    (kernel-checked in test_socket_kernel.py): back to those."""
    for value, transparent in ((1, True), (ir.Range(0, 1), False)):
        (r,) = lower_rule(rule(ir.Proto(frozenset({6})), fm("socket transparent", value)),
                          "ip", {})
        assert r.matches[1] == ir.Socket(transparent=transparent, nowildcard=True)
    rs = parse_nft("table ip t {\n chain c {\n  type filter hook prerouting priority mangle;\n"
                   "  meta l4proto tcp socket transparent 1 accept\n }\n}\n", "s.nft")
    assert "-p tcp -m socket --transparent --nowildcard -j ACCEPT" in emit_iptables(rs)["ip"]
