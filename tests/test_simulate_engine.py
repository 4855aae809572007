"""Per-construct meaning in the simulator: chains, verdicts, matches, statements, errors, cache."""

from __future__ import annotations

import ipaddress

import attrs
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwc import cli, ir
from fwc.backends.simulate import SimOptions, Simulator, simulate
from fwc.errors import Unsupported
from test_simulate_util import (R, case, chain, filter_rs, ruleset, run, state, table, tcp_dports,
                                udp_dport, user)

ACCEPT, DROP = ir.Accept(), ir.Drop()
IN22 = {"dport": 22}


def test_jump_return_and_policy():
    sub = user("sub", R(tcp_dports(23), verdict=DROP), R(verdict=ir.Return()),
               R(verdict=DROP))
    rs = ruleset(table("filter", chain("filter", "INPUT", R(verdict=ir.Jump("sub")),
                                       R(tcp_dports(22), verdict=ACCEPT), policy="drop"),
                       sub))
    assert run(rs, IN22).verdict == "ACCEPT"  # returned from sub, then accepted
    assert run(rs, {"dport": 23}).verdict == "DROP"
    assert run(rs, {"dport": 24}).verdict == "DROP"  # fell to policy


def test_goto_does_not_come_back():
    sub = user("sub", R(tcp_dports(23), verdict=DROP))
    rs = ruleset(table("filter", chain("filter", "INPUT", R(verdict=ir.Goto("sub")),
                                       R(verdict=DROP), policy="accept"), sub))
    # sub falls off the end: back to INPUT's caller, i.e. INPUT's policy, skipping the drop rule
    assert run(rs, IN22).verdict == "ACCEPT"


def test_accept_in_one_base_chain_continues_with_the_next():
    mangle = table("mangle", chain("mangle", "INPUT", R(verdict=ACCEPT)))
    filt = table("filter", chain("filter", "INPUT", R(tcp_dports(22), verdict=DROP)))
    assert run(ruleset(mangle, filt), IN22).verdict == "DROP"


def test_families_see_only_their_packets():
    rs = filter_rs([R(verdict=DROP)], family="ip6")
    assert run(rs, IN22).verdict == "ACCEPT"
    assert run(rs, {"src": "2001:db8:a::10", "dport": 22}).verdict == "DROP"
    inet = ruleset(table("filter", chain("filter", "INPUT", R(verdict=DROP)), family="inet"))
    assert run(inet, IN22).verdict == "DROP"


def test_negated_port_still_requires_protocol():
    rule = R((ir.Port("tcp", "dport", (ir.Range(22, 22),), negate=True),), verdict=DROP)
    rs = filter_rs([rule])
    assert run(rs, {"dport": 80}).verdict == "DROP"
    assert run(rs, {"proto": "udp", "dport": 80}).verdict == "ACCEPT"


def test_marks_and_connmark_restore():
    mangle = table("mangle", chain("mangle", "PREROUTING",
                                   R(tcp_dports(22), statements=(ir.SetMark("meta", 0x5),)),
                                   R(statements=(ir.CopyMark("ct"),))))
    filt = table("filter", chain("filter", "INPUT",
                                 R((ir.Mark("ct", 0x5),), verdict=ACCEPT), policy="drop"))
    res = run(ruleset(mangle, filt), IN22)
    assert res.verdict == "ACCEPT"
    assert any("ct mark set 0x5" in e["action"] for e in res.trace)


def test_addrtype_local_is_an_option():
    rule = R((ir.AddrType("daddr", frozenset({"LOCAL"})),), verdict=DROP)
    rs = filter_rs(forward_rules=[rule])
    fwd = {"dir": "fwd", "dst": "203.0.113.99"}
    assert run(rs, fwd).verdict == "ACCEPT"
    assert run(rs, fwd, extra_local=("203.0.113.0/24",)).verdict == "DROP"


def test_limit_and_statistic_defaults_and_options():
    lim = filter_rs([R((ir.Limit(1, "second"),), verdict=DROP)])
    assert run(lim, IN22).verdict == "DROP"
    assert run(lim, IN22, limit_over=True).verdict == "ACCEPT"
    nth = filter_rs([R((ir.Statistic("nth", every=2, packet=0),), verdict=DROP)])
    # as xt_statistic: the counter starts at --packet and matches when it wraps at every-1
    res = run(nth, IN22, IN22, IN22)
    assert (res.setup_verdicts, res.verdict) == (("ACCEPT", "DROP"), "ACCEPT")


def test_external_set_default_empty_is_said_in_trace():
    rule = R((ir.SetLookup("bad", ("saddr",)),), verdict=DROP)
    res = run(filter_rs([rule]), IN22)
    assert res.verdict == "ACCEPT"
    assert any("assumed empty" in e["action"] for e in res.trace)
    assert run(filter_rs([rule]), IN22, sets={"bad": ["198.51.100.0/24"]}).verdict == "DROP"


def test_nft_field_match_and_vmap():
    fm = ir.FieldMatch("tcp dport", (ir.Range(20, 25),))
    vmap = ir.VerdictMap(("ct state",), elements=((("established",), ACCEPT),
                                                  (("new",), ir.Jump("x"))))
    x = user("x", R((fm,), verdict=DROP))
    rs = ruleset(table("filter", chain("filter", "INPUT", R(verdict=vmap)), x, family="inet"))
    assert run(rs, IN22).verdict == "DROP"
    assert run(rs, {"dport": 80}).verdict == "ACCEPT"


def test_unsupported_constructs_are_located():
    loc = ir.Loc("r.nft", 7, 3)
    rs = filter_rs([R((ir.FieldMatch("meta cgroup", (1,)),), verdict=DROP, loc=loc)])
    with pytest.raises(Unsupported) as e:
        run(rs, IN22)  # (refused when a packet reaches the rule)
    assert e.value.loc == loc and "meta cgroup" in e.value.message
    # an unknown helper is refused when a packet reaches its rule (others are still simulated)
    rs = filter_rs([R(tcp_dports(22), verdict=ACCEPT),
                    R(statements=(ir.CtHelperSet("irc"),), loc=loc)])
    assert run(rs, IN22).verdict == "ACCEPT"
    with pytest.raises(Unsupported) as e:
        run(rs, {"dport": 80})
    assert e.value.loc == loc and "'irc'" in e.value.message
    rs = filter_rs([R(verdict=ir.Jump("nowhere"), loc=loc)])
    with pytest.raises(Unsupported):
        Simulator(rs)


def test_trace_names_hook_table_chain_rule_and_loc():
    loc = ir.Loc("rules.v4", 5, 1)
    rs = filter_rs([R(tcp_dports(22), verdict=ACCEPT, loc=loc)], "drop")
    res = run(rs, IN22)
    hit = [e for e in res.trace if e["chain"] == "INPUT"]
    assert hit == [{"hook": "input", "table": "ip filter", "chain": "INPUT", "rule": 1,
                    "loc": "rules.v4:5:1", "action": "accept"}]


PORTS = st.sampled_from([21, 22, 25, 53, 80, 443, 8080])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(PORTS, st.sampled_from(["S", "A", "SA", "R", "FA"]),
                          st.sampled_from(["in", "out"]), st.booleans()), min_size=1, max_size=8))
def test_decision_cache_never_changes_results(seq):
    rules = [R(tcp_dports(22), statements=(ir.SetMark("meta", 1),)),
             R((state("ESTABLISHED"),), verdict=ACCEPT),
             R((ir.Mark("meta", 1),) + (state("NEW"),), verdict=ACCEPT),
             R(udp_dport(53), verdict=ACCEPT), R(tcp_dports(25), verdict=ir.Reject())]
    rs = filter_rs(rules, "drop", output_rules=[R(tcp_dports(8080), verdict=DROP)])
    pkts = []
    for port, flags, d, swap in seq:
        p = {"dir": d, "dport": port, "flags": flags}
        if swap:
            p = {"dir": d, "sport": port, "dport": 40000, "flags": flags}
        pkts.append(p)
    cases = [case(pkts[-1], *pkts[:-1])]
    with_cache = simulate(rs, cases, SimOptions(cache=True))
    without = simulate(rs, cases, SimOptions(cache=False))
    assert [(r.verdict, r.ct_state, r.setup_verdicts, r.trace) for r in with_cache] == \
           [(r.verdict, r.ct_state, r.setup_verdicts, r.trace) for r in without]


def test_cli_simulate_and_explain(tmp_path, capsys):
    rules = tmp_path / "r.rules"
    rules.write_text("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
                     "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    cases = tmp_path / "c.json"
    cases.write_text(json.dumps([{"name": "ssh", "probe": {"dport": 22}},
                                 {"name": "web", "probe": {"dport": 80}}]))
    assert cli.main(["simulate", str(rules), "--cases", str(cases), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["name"], x["verdict"], x["ct_state"]) for x in lines] == \
           [("ssh", "ACCEPT", "NEW"), ("web", "DROP", "NEW")]
    assert cli.main(["explain", str(rules), "--packet", "in tcp 198.51.100.7:40000 > :22"]) == 0
    out = capsys.readouterr().out
    assert "-A INPUT -p tcp --dport 22 -j ACCEPT" in out and "verdict: ACCEPT" in out
    assert cli.main(["simulate", str(rules), "--setup", "out udp :5000 > 198.51.100.1:53",
                     "--packet", "in udp 198.51.100.1:53 > 192.0.2.1:5000",
                     "--show-conntrack"]) == 0
    out = capsys.readouterr().out
    assert "ESTABLISHED" in out and "udp      17" in out
    assert cli.main(["simulate", str(rules), "--packet", "in tcp > :22 bogus 1"]) == 2


def test_packet_syntax_ipv6_and_icmp():
    from fwc.commands.simulate import parse_packet_text
    p = parse_packet_text("in ip6 tcp [2001:db8:a::1]:1234 > [2001:db8:f::1]:22 flags SA")
    assert (p.l3, p.sport, p.dport, p.flags) == (6, 1234, 22, frozenset({"SYN", "ACK"}))
    p = parse_packet_text("in 198.51.100.1 > 192.0.2.1 type 3 code 3 quote 0", 1)
    assert (p.proto, p.icmp_type, p.icmp_code, p.quote) == (1, 3, 3, 0)
    assert p.src == ipaddress.ip_address("198.51.100.1")
    arrow = parse_packet_text("in tcp 198.51.100.1:40000 -> 192.0.2.1:22 flags S")
    assert (arrow.dst, arrow.dport) == (ipaddress.ip_address("192.0.2.1"), 22)


def test_decision_cache_never_replays_a_verdict_map_decision():
    """A vmap decides on its key: two packets differing only there must not share a cached
    decision (found by the optimiser's property tests)."""
    from fwc import ir
    from fwc.backends.simulate import SimOptions, simulate
    from fwc.packet import cases_from_json

    vmap = ir.VerdictMap(("tcp dport",), elements=(((22,), ir.Accept()), ((23,), ir.Drop())))
    rs = ir.Ruleset((ir.Table("ip", "filter", (ir.Chain(
        "INPUT", (ir.Rule((ir.Proto(frozenset({6})),), verdict=vmap),),
        ir.iptables_base_hook("filter", "INPUT", "accept")),)),))
    cases = cases_from_json([{"name": str(p), "probe": {"dir": "in", "dport": p}}
                             for p in (22, 23, 22, 23)])
    cached = [r.verdict for r in simulate(rs, cases, SimOptions(cache=True))]
    assert cached == ["ACCEPT", "DROP", "ACCEPT", "DROP"]


def test_meta_iif_oif_and_meta_protocol_are_simulated():
    from fwc.frontends.nft import parse_nft
    from fwc.packet import cases_from_json
    rs = parse_nft("""table inet f {
 chain i { type filter hook input priority 0; policy drop;
  iif "lo" accept
  iif "eth0" meta protocol ip tcp dport 22 accept
  meta protocol ip6 tcp dport 80 accept
 }
 chain o { type filter hook output priority 0; policy drop; oif "eth1" accept; }
}""")
    syn = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 1000, "dport": 22,
           "flags": "S", "iif": "eth0"}
    syn6 = dict(syn, src="2001:db8:a::7", dst="2001:db8:f::1", dport=80)
    out = {"dir": "out", "src": "192.0.2.1", "dst": "203.0.113.9", "sport": 1000, "dport": 80,
           "flags": "S", "oif": "eth1"}
    cases = cases_from_json([{"name": "ssh-eth0", "probe": syn},
                             {"name": "ssh-eth1", "probe": dict(syn, iif="eth1")},
                             {"name": "web6", "probe": syn6},
                             {"name": "web4", "probe": dict(syn, dport=80)},
                             {"name": "out-eth1", "probe": out},
                             {"name": "out-eth0", "probe": dict(out, dst="198.51.100.7",
                                                                oif="eth0")}])
    got = {r.name: r.verdict for r in simulate(rs, cases)}
    assert got == {"ssh-eth0": "ACCEPT", "ssh-eth1": "DROP", "web6": "ACCEPT", "web4": "DROP",
                   "out-eth1": "ACCEPT", "out-eth0": "DROP"}


def test_simulate_refuses_a_second_packet_option(tmp_path, capsys):
    p = tmp_path / "r.rules"
    p.write_text("*filter\nCOMMIT\n")
    with pytest.raises(SystemExit) as ei:
        cli.main(["simulate", str(p), "--packet", "in tcp", "--packet", "in udp"])
    assert ei.value.code == 2
    assert "--packet given twice" in capsys.readouterr().err


def test_a_timeout_set_only_read_by_the_ruleset_is_simulated_as_declared():
    """`set blocked { flags timeout; }` filled from outside (fail2ban, sshguard) and only read
    by `ip saddr @blocked drop`: simulated with the elements the ruleset declares; one the
    rules also add to keeps the additions for the rest of the case; one with per-element
    limits stays refused."""
    from fwc.frontends.nft import parse_nft
    from fwc.packet import cases_from_json
    base = ("table ip t {\n set blocked {\n  type ipv4_addr\n  flags timeout\n"
            "  elements = { 198.51.100.7 timeout 1h }\n }\n chain input {\n"
            "  type filter hook input priority filter;\n  ip saddr @blocked drop\n%s }\n}\n")
    case = cases_from_json([{"name": "c", "probe": {"dir": "in", "src": "198.51.100.7",
                                                    "dst": "192.0.2.1", "dport": 22,
                                                    "flags": "S"}}])[0]
    sim = Simulator(parse_nft(base % "", "b.nft"), SimOptions())
    assert sim.run_case(case).verdict == "DROP"
    adding = Simulator(parse_nft(base % "  tcp dport 22 add @blocked { ip saddr }\n", "b.nft"),
                       SimOptions())
    other = attrs.evolve(case.probe, src=ipaddress.ip_address("198.51.100.8"))
    knock = attrs.evolve(case, setup=(other,), probe=attrs.evolve(other, sport=40001))
    assert (adding.run_case(knock).setup_verdicts, adding.run_case(knock).verdict) == \
        (("ACCEPT",), "DROP")
    limiting = Simulator(parse_nft(base % "  update @blocked { ip saddr limit rate 1/second }\n",
                                   "b.nft"), SimOptions())
    with pytest.raises(Unsupported, match="per-element limits"):  # (the set's lookup too)
        limiting.run_case(case)


def test_connlimit_counts_live_connections_per_masked_key():
    # (kernel agreement: tests/kernel/test_connlimit_kernel.py)
    syn = lambda sport, src="198.51.100.7": {"src": src, "sport": sport, "flags": "S"}  # noqa: E731
    rule = R((ir.ConnLimit("saddr", 24, 1, above=True),), verdict=DROP)
    rs = filter_rs([rule])
    assert run(rs, syn(1000)).verdict == "ACCEPT"  # its own connection: count 1
    assert run(rs, syn(1001), syn(1000)).verdict == "DROP"  # two from one /24
    assert run(rs, syn(1001, "198.51.100.200"), syn(1000)).verdict == "DROP"
    assert run(rs, syn(1001, "203.0.113.9"), syn(1000)).verdict == "ACCEPT"
    assert run(rs, syn(1000), syn(1000)).verdict == "ACCEPT"  # one connection counted once
    # a connection reset before any reply is gone, and no longer counts
    rst = {"src": "198.51.100.7", "sport": 1000, "flags": "R"}
    assert run(rs, syn(1001), syn(1000), rst).verdict == "ACCEPT"
    upto = filter_rs([R((ir.CtCount(1),), verdict=ACCEPT)], input_policy="drop")
    assert run(upto, syn(1000)).verdict == "ACCEPT"
    assert run(upto, syn(1001, "203.0.113.9"), syn(1000)).verdict == "DROP"  # one list for all


def test_ipsec_fields_and_ipv6_extension_headers():
    esp = {"proto": 50, "sport": None, "dport": None,
           "payload": "\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x01"}  # spi 5, seq 1 (C escapes)
    rs = filter_rs([R((ir.FieldMatch("esp spi", (ir.Range(5, 5),)),), verdict=DROP)])
    assert run(rs, esp).verdict == "DROP"
    assert run(rs, dict(esp, payload="\\x00\\x00\\x00\\x06")).verdict == "ACCEPT"
    assert run(rs, dict(esp, payload="\\x00\\x00")).verdict == "ACCEPT"  # too short: no match
    v6 = {"src": "2001:db8:a::10", "dst": "2001:db8:f::1", "dport": 22}
    for expr, values, negate, verdict in (("exthdr rt", ("exists",), False, "ACCEPT"),
                                          ("exthdr rt", ("exists",), True, "DROP"),
                                          ("rt type", (0,), False, "ACCEPT"),
                                          ("rt type", (0,), True, "ACCEPT"),  # no header
                                          ("frag more-fragments", (1,), True, "ACCEPT")):
        rs = filter_rs([R((ir.FieldMatch(expr, values, negate=negate),), verdict=DROP)],
                       family="ip6")
        assert run(rs, v6).verdict == verdict, (expr, negate)


def test_nft_meta_pkttype_reads_like_the_pkttype_match():
    from fwc.frontends.iptables import parse_iptables_save
    from fwc.frontends.nft import parse_nft
    from fwc.packet import cases_from_json
    nft = parse_nft("table ip t {\n chain c {\n  type filter hook input priority 0;\n"
                    "  pkttype { broadcast, multicast } drop\n  meta pkttype host udp dport 9 drop\n"
                    "  ip frag-off & 0x1fff != 0 drop\n }\n}\n", "p.nft")
    ipt = parse_iptables_save("*filter\n-A INPUT -m pkttype --pkt-type broadcast -j DROP\n"
                              "-A INPUT -m pkttype --pkt-type multicast -j DROP\n"
                              "-A INPUT -p udp --dport 9 -m pkttype --pkt-type unicast -j DROP\n"
                              "-A INPUT -f -j DROP\nCOMMIT\n", "p.rules")
    cases = cases_from_json([{"name": f"{d}:{p}", "probe": {
        "dir": "in", "proto": "udp", "src": "192.0.2.9", "dst": d, "sport": 1, "dport": p}}
        for d in ("192.0.2.1", "192.0.2.255", "255.255.255.255", "224.0.0.1") for p in (8, 9)])
    opts = SimOptions(interfaces={"eth0": ("192.0.2.1/24",)})
    a, b = simulate(nft, cases, opts), simulate(ipt, cases, opts)
    assert [x.verdict for x in a] == [x.verdict for x in b]
    assert [x.verdict for x in a][:4] == ["ACCEPT", "DROP", "DROP", "DROP"]


@pytest.mark.parametrize("probe", [{"src": 1}, {"dst": ["1.2.3.4"]}, {"proto": True},
                                   {"proto": "icmp", "quote": True}])
def test_case_fields_of_the_wrong_json_type_are_refused(probe):
    from fwc.errors import FwcSyntaxError
    from fwc.packet import cases_from_json
    with pytest.raises(FwcSyntaxError):
        cases_from_json([{"setup": [{}], "probe": probe}])


def test_big_set_lookups_find_what_trying_every_element_finds():
    """A set of many elements is looked up by bisection on its first key (kept only when the
    first-key intervals are disjoint once equal ones are grouped); against one rule per
    element, on random packets, for a plain interval set and an address . port set."""
    import random
    from fwc.frontends.nft import parse_nft
    from fwc.packet import cases_from_json
    rnd = random.Random(11)
    nets = sorted({rnd.randrange(1, 250) for _ in range(60)})
    ports = [1000 + 10 * i for i in range(40)]
    plain = ", ".join(f"10.0.{n}.0/24" for n in nets[::2])
    pairs = [(n, rnd.choice(ports)) for n in nets for _ in range(2)]
    concat = ", ".join(f"10.0.{n}.0/24 . {p}" for n, p in pairs)
    head = "table ip t {\n chain c {\n  type filter hook input priority 0; policy accept;\n"
    sets = head + f"  ip saddr {{ {plain} }} drop\n" \
        f"  ip saddr . tcp dport {{ {concat} }} reject\n }}\n}}\n"
    rules = head + "".join(f"  ip saddr 10.0.{n}.0/24 drop\n" for n in nets[::2]) + \
        "".join(f"  ip saddr 10.0.{n}.0/24 tcp dport {p} reject\n" for n, p in pairs) + " }\n}\n"
    cases = cases_from_json([{"name": str(k), "probe": {
        "dir": "in", "src": f"10.0.{rnd.randrange(0, 256)}.{rnd.randrange(1, 255)}",
        "dst": "192.0.2.1", "sport": 4000, "dport": rnd.choice(ports + [7]), "flags": "S"}}
        for k in range(300)])
    a = simulate(parse_nft(sets, "s.nft"), cases)
    b = simulate(parse_nft(rules, "r.nft"), cases)
    assert [r.verdict for r in a] == [r.verdict for r in b]
    assert {r.verdict for r in a} == {"ACCEPT", "DROP", "REJECT"}


def test_a_cases_in_destination_and_out_source_are_the_hosts_own():
    """The kernel delivers a unicast packet to input only for an own address (the harness makes
    each case's `in` destination local): `--dst-type LOCAL` holds for it; another case
    forwarding to the same address does not see it local, and broadcasts stay broadcasts."""
    from fwc.frontends.iptables import parse_iptables_save
    from fwc.packet import cases_from_json
    rs = parse_iptables_save("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n"
                             "-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT\n"
                             "-A FORWARD -m addrtype --dst-type LOCAL -j ACCEPT\n"
                             "-A FORWARD -m addrtype --dst-type UNICAST -j REJECT\nCOMMIT\n",
                             "own.rules")
    udp = {"proto": "udp", "src": "198.51.100.7", "sport": 1000, "dport": 9}
    cases = cases_from_json([
        {"name": "in", "probe": dict(udp, dir="in", dst="172.17.255.254", iif="eth0")},
        {"name": "fwd", "probe": dict(udp, dir="fwd", dst="172.17.255.254", iif="eth0",
                                      oif="eth1")},
        {"name": "bcast", "probe": dict(udp, dir="in", dst="192.0.2.255", iif="eth0")},
        {"name": "in-again", "probe": dict(udp, dir="in", dst="172.17.255.254", iif="eth0")}])
    got = [r.verdict for r in simulate(rs, cases)]
    assert got == ["ACCEPT", "REJECT", "DROP", "ACCEPT"]


def test_a_construct_the_simulator_lacks_refuses_only_the_packets_that_reach_it():
    """An `out` packet, or a UDP one, never reaches a prerouting TPROXY rule for tcp port 80:
    those are simulated; a packet that reaches the rule is refused, located, naming TPROXY."""
    from fwc.frontends import parse_text
    rs = parse_text("*mangle\n-A PREROUTING -p tcp --dport 80 -j TPROXY --on-port 1\nCOMMIT\n"
                    "*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n",
                    "tp.rules", "iptables")
    sim = Simulator(rs)
    udp = case({"dir": "in", "proto": "udp", "src": "198.51.100.7",
                           "dst": "192.0.2.1", "sport": 5, "dport": 53})
    tcp81 = case({"dir": "in", "proto": "tcp", "src": "198.51.100.7",
                               "dst": "192.0.2.1", "sport": 5, "dport": 81, "flags": "S"})
    assert sim.run_case(udp).verdict == "ACCEPT"
    assert sim.run_case(tcp81).verdict == "DROP"
    with pytest.raises(Unsupported, match=r"tproxy \(TPROXY\) is not simulated") as e:
        sim.run_case(case({"dir": "in", "proto": "tcp", "src": "198.51.100.7",
                                        "dst": "192.0.2.1", "sport": 5, "dport": 80,
                                        "flags": "S"}))
    assert (e.value.loc.file, e.value.loc.line) == ("tp.rules", 2)


def test_l2_tables_that_decide_nothing_are_left_out():
    from fwc.frontends import parse_text
    text = ("table bridge b {\n chain f {\n  type filter hook forward priority 0; policy %s;\n"
            " }\n}\ntable ip t {\n chain i {\n  type filter hook input priority 0; policy drop;\n"
            "  tcp dport 22 accept\n }\n}\n")
    probe = case({"dir": "in", "proto": "tcp", "src": "198.51.100.7",
                             "dst": "192.0.2.1", "sport": 5, "dport": 22, "flags": "S"})
    assert Simulator(parse_text(text % "accept", "b.nft", "nft")).run_case(probe).verdict == \
        "ACCEPT"
    with pytest.raises(Unsupported, match="table family 'bridge'"):
        Simulator(parse_text(text % "drop", "b.nft", "nft"))


def test_the_sip_helper_on_a_nated_connection_is_refused_at_the_rule_that_assigns_it():
    """nf_nat_sip rewrites a NATed SIP message and its SDP, and NATs the media expectations:
    not modelled, so the case is refused (located at the CT --helper rule); without NAT the
    helper is simulated (tests/kernel/test_ct_helper_kernel.py)."""
    from fwc.frontends import parse_text
    invite = ("INVITE sip:b@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060\r\n"
              "Call-ID: 1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    probe = {"dir": "fwd", "proto": "udp", "src": "198.51.100.7", "dst": "203.0.113.10",
             "sport": 5060, "dport": 5060, "iif": "eth0", "oif": "eth1", "payload": invite}
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp --dport 5060 -j CT --helper sip\n"
            "COMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n%sCOMMIT\n")
    plain = Simulator(parse_text(text % "", "sip.rules", "iptables"))
    assert plain.run_case(case(probe)).verdict == "ACCEPT"
    nated = Simulator(parse_text(text % "-A POSTROUTING -o eth1 -j MASQUERADE\n", "sip.rules",
                                 "iptables"))
    with pytest.raises(Unsupported, match="SIP helper on a NATed connection") as e:
        nated.run_case(case(probe))
    assert (e.value.loc.file, e.value.loc.line) == ("sip.rules", 3)


def test_a_line_of_a_thousand_user_chains_is_simulated():
    """Valid (no base chain reaches them, so no jump-depth limit): the closures are iterative."""
    from fwc.frontends import parse_text
    n = 1000
    text = "\n".join(["*filter"] + [f":c{i} - [0:0]" for i in range(n)] +
                     [f"-A c{i} -j c{i + 1}" for i in range(n - 1)] + ["COMMIT", ""])
    sim = Simulator(parse_text(text, "line.rules", "iptables"))
    assert sim.run_case(case({"dir": "in", "proto": "tcp", "src": "198.51.100.7",
                              "dst": "192.0.2.1", "sport": 5, "dport": 22,
                              "flags": "S"})).verdict == "ACCEPT"
