"""nft -> iptables: the nft forms fwc's nft backend writes for iptables constructs read back to the
IR they came from, and `fwc translate --from nft --to iptables` works end to end."""

from __future__ import annotations

import ipaddress

import attrs
import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.cli import main
from fwc.errors import ErrorGroup, FwcSyntaxError, Unsupported
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.nft import parse_nft

net = ipaddress.ip_network


def chain_rules(rs: ir.Ruleset, family: str, table: str, chain: str):
    return rs.table(family, table).chain(chain).rules


def test_ct_helper_object_is_the_helper_for_its_protocol():
    text = """table ip raw {
 ct helper ftp-tcp { type "ftp" protocol tcp; }
 chain c { type filter hook prerouting priority -199; tcp dport 21 ct helper set "ftp-tcp" }
}"""
    (r,) = chain_rules(parse_nft(text), "ip", "raw", "c")
    assert r.statements == (ir.CtHelperSet("ftp", template=False),)
    # without the protocol the object assigns to tcp connections only: not a plain CtHelperSet
    with pytest.raises(Unsupported, match="protocol"):
        parse_nft(text.replace("tcp dport 21 ", ""))
    with pytest.raises(FwcSyntaxError, match="not declared"):
        parse_nft(text.replace('set "ftp-tcp"', 'set "nope"'))


def test_prefix_map_nat_is_netmap():
    base = "table ip nat {{ chain p {{ type nat hook prerouting priority dstnat; {} }} }}"
    (r,) = chain_rules(parse_nft(base.format(
        "dnat ip prefix to ip daddr map { 0.0.0.0/0 : 192.0.2.0/24 }")), "ip", "nat", "p")
    assert r.matches == () and r.verdict == ir.Netmap("daddr", net("192.0.2.0/24"))
    # a key narrower than everything: the rule applies only inside it
    (r,) = chain_rules(parse_nft(base.format(
        "dnat ip prefix to ip daddr map { 198.51.100.0/24 : 192.0.2.0/24 }")), "ip", "nat", "p")
    assert r.matches == (ir.Address("daddr", (net("198.51.100.0/24"),)),)
    with pytest.raises(Unsupported, match="single element"):
        parse_nft(base.format("dnat ip prefix to ip daddr map { 10.0.0.0/8 : 192.0.2.0/24, "
                              "11.0.0.0/8 : 198.51.100.0/24 }"))


def test_per_element_limit_is_hashlimit():
    text = """table ip filter {
 set fl { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 2000ms; }
 chain c { type filter hook input priority 0;
  tcp dport 22 update @fl { ip saddr and 255.255.255.0 limit rate over 10/second burst 20 packets } drop
  udp dport 53 update @fl { ip saddr . th dport limit rate 3/minute burst 5 packets } accept
  update @fl { ip saddr . th dport limit rate 3/minute burst 5 packets } accept
 }
}"""
    with pytest.raises(Unsupported, match="port protocol"):
        parse_nft(text)
    r1, r2 = chain_rules(parse_nft(text.replace("  update @fl", "  ip protocol tcp update @fl")),
                         "ip", "filter", "c")[:2]
    assert r1.matches[-1] == ir.HashLimit("fl", 10, "second", 20, ("srcip",), 24, None, True, 2000)
    assert r2.matches[-1] == ir.HashLimit("fl", 3, "minute", 5, ("srcip", "dstport"), None, None,
                                          False, 2000)


def test_empty_address_set_is_an_external_set():
    text = """table ip filter {
 set allow { type ipv4_addr; flags interval; }
 set full { type ipv4_addr; elements = { 192.0.2.1 } }
 chain c { ip saddr @allow accept; ip daddr != @allow drop; ip saddr @full accept }
}"""
    t = parse_nft(text).table("ip", "filter")
    assert ir.ExternalSet("allow", "ip", ("addr",), True) in t.sets
    r1, r2, r3 = t.chain("c").rules
    assert r1.matches == (ir.SetLookup("allow", ("src",)),)
    assert r2.matches == (ir.SetLookup("allow", ("dst",), negate=True),)
    assert r3.matches == (ir.SetMatch(("ip saddr",), "full"),)  # filled by the ruleset itself


IPT = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22,80 -m set --match-set allow src -j ACCEPT
-A INPUT -p tcp -m hashlimit --hashlimit-above 5/sec --hashlimit-burst 8 --hashlimit-mode srcip --hashlimit-name fl --hashlimit-srcmask 24 -j DROP
-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 198.51.100.0/24 -j NETMAP --to 192.0.2.0/24
-A POSTROUTING -o eth1 -j MASQUERADE
COMMIT
"""


def test_iptables_nft_iptables_gives_the_same_ir():
    rs = parse_iptables_save(IPT, "in.rules")
    back = parse_nft(emit_nft(rs), "out.nft")
    again = parse_iptables_save(emit_iptables(back)["ip"], "again.rules")
    assert again == rs


def test_cli_translate_from_nft_to_iptables(tmp_path, capsys):
    src = tmp_path / "rules.nft"
    src.write_text(emit_nft(parse_iptables_save(IPT, "in.rules")))
    code = main(["translate", "--from", "nft", "--to", "iptables", str(src)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert parse_iptables_save(out, "out.rules") == parse_iptables_save(IPT, "in.rules")
    assert "-j NETMAP --to 192.0.2.0/24" in out and "--match-set allow src" in out
    # a construct iptables cannot say: located error, exit 1, nothing on stdout
    src.write_text("table ip6 filter {\n chain input {\n  type filter hook input priority 0;\n"
                   "  ip6 flowlabel 5 accept\n  tcp dport 22 accept\n }\n}\n")
    code = main(["translate", "--from", "nft", "--to", "iptables", str(src)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert f"{src}:4:3: error:" in err


HELPERS = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ports - [0:0]
-A PREROUTING -j ports
-A OUTPUT -j ports
-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp
-A ports -p tcp -m tcp --dport 21 -j CT --helper ftp
-A ports -s 192.0.2.0/24 -j RETURN
-A ports -p tcp -m tcp --dport 1723 -j CT --helper pptp
COMMIT
"""


def test_raw_ct_helper_replay_chains_go_back_to_the_raw_table():
    """fwc's nft backend writes `-t raw -j CT --helper` as a raw chain without the helpers
    plus a replay at priority -199 (nft_helpers); nft -> iptables puts them back together."""
    rs = parse_iptables_save(HELPERS, "in.rules")
    text = emit_nft(rs)
    assert "priority -199" in text
    back = parse_nft(text, "out.nft")
    out = emit_iptables(back)["ip"]
    assert "-j CT --helper pptp" in out and "-j CT --helper tftp" in out
    assert parse_iptables_save(out, "again.rules") == rs


@pytest.mark.parametrize("edit", [
    # the replay decides differently from the raw chain (another port)
    ("tcp dport 1723 ct helper set", "tcp dport 1724 ct helper set"),
    # a hand-written chain at -199 that replays nothing
    ("jump ports-helpers", "jump ports-helpers\n\t\tudp dport 5 accept"),
    # something else enters the replay chain
    ("chain OUTPUT {\n", "chain OUTPUT {\n\t\tudp dport 7 jump ports-helpers\n"),
])
def test_other_chains_at_minus_199_are_still_refused(edit):
    text = emit_nft(parse_iptables_save(HELPERS, "in.rules"))
    assert edit[0] in text
    back = parse_nft(text.replace(edit[0], edit[1], 1), "out.nft")
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(back)
    # (a chain at -199 is mangle's when nothing lies between them; its helpers are not)
    assert any(("priority -199" in x.message or "ct helper set outside the raw table"
                in x.message) and x.loc.line > 0 for x in e.value.errors)


def test_protocol_port_lookup_becomes_one_rule_per_protocol():
    text = """table ip filter {
 chain INPUT { type filter hook input priority 0; policy drop;
  ip saddr 10.0.0.0/8 ip protocol . th dport { tcp . 22, udp . 53, tcp . 80 } accept
 }
}"""
    out = emit_iptables(parse_nft(text))["ip"]
    assert "-A INPUT -s 10.0.0.0/8 -p tcp -m multiport --dports 22,80 -j ACCEPT" in out
    assert "-A INPUT -s 10.0.0.0/8 -p udp -m udp --dport 53 -j ACCEPT" in out
    # a rate limit would become one bucket per protocol: refused, not split
    limited = text.replace("accept", "limit rate 5/second accept")
    with pytest.raises((ErrorGroup, Unsupported)):
        emit_iptables(parse_nft(limited))


@pytest.mark.parametrize("hook,kind,rule,needle", [
    ("postrouting", "nat", 'iifname "wg0" oifname "eth0" masquerade', "iptables refuses -i"),
    # (a set of names becomes one rule per name first: the check sees the pieces too)
    ("postrouting", "nat", 'iifname { "br0", "wbr0" } oifname "wan0" masquerade',
     "iptables refuses -i in POSTROUTING"),
    ("input", "filter", 'oifname { "a", "b" } drop', "iptables refuses -o in INPUT"),
    ("output", "filter", 'iifname "lo" accept', "iptables refuses -i in OUTPUT"),
    ("input", "filter", 'oifname "eth0" drop', "iptables refuses -o in INPUT"),
    ("prerouting", "filter", 'oifname != "eth0" drop', "iptables refuses -o in PREROUTING"),
    ("forward", "filter", "tcp option maxseg size set rt mtu", "does not itself match SYN"),
    ("forward", "filter", 'oifname "a" oifname "b" drop', "several oifname tests"),
    ("forward", "filter", 'oifname "a" oifname != "a*" drop', "its own negation"),
    ("forward", "filter", 'oifname != "a" oifname != "b" limit rate 1/second accept',
     "stateful match"),
])
def test_what_iptables_restore_would_refuse_is_refused_located(hook, kind, rule, needle):
    prio = {"nat": "srcnat", "prerouting": "mangle"}.get(kind if kind == "nat" else hook, "filter")
    text = (f"table ip t {{\n chain c {{\n  type {kind} hook {hook} priority {prio};\n"
            f"  {rule}\n }}\n}}\n")
    with pytest.raises(ErrorGroup) as ei:
        emit_iptables(parse_nft(text, "t.nft"))
    (e,) = ei.value.errors
    assert isinstance(e, Unsupported) and e.loc.line == 4 and needle in e.message, e.format()


def test_tcpmss_with_its_syn_test_in_the_rule_translates():
    text = ("table ip t {\n chain c {\n  type filter hook forward priority filter;\n"
            "  tcp flags syn tcp option maxseg size set rt mtu\n }\n}\n")
    out = emit_iptables(parse_nft(text, "t.nft"))["ip"]
    assert "-j TCPMSS --clamp-mss-to-pmtu" in out and "SYN" in out


def test_a_limit_iptables_cannot_hold_is_refused():
    text = ("table ip t {\n chain c {\n  type filter hook input priority filter;\n"
            "  limit rate 20000/second burst 20000 packets accept\n }\n}\n")
    with pytest.raises(ErrorGroup) as ei:
        emit_iptables(parse_nft(text, "l.nft"))
    assert "at most 10000/second" in ei.value.errors[0].message
    assert "--limit 600000/minute" in emit_iptables(parse_nft(
        text.replace("20000/second burst 20000", "600000/minute burst 10000"), "l.nft"))["ip"]


@pytest.mark.parametrize("rule,needle", [
    ("meta l4proto 0 drop", "protocol 0"),  # iptables: -p 0 is every protocol
    ("ip protocol 0 drop", "protocol 0"),
    ("icmp type 255 accept", "ICMP type 255"),  # xt_icmp: type 255 matches any type
    ('log prefix "' + "p" * 30 + '" accept', "log prefix over 29 bytes"),  # restore would cut it
    ('log group 1 prefix "' + "n" * 100 + '"', None),
])
def test_what_iptables_would_read_wider_or_cut_is_refused(rule, needle):
    text = ("table ip filter {\n chain INPUT {\n  type filter hook input priority 0;\n"
            f"  {rule}\n }}\n}}\n")
    rs = parse_nft(text, "w.nft")
    if needle is None:
        assert "--nflog-prefix" in emit_iptables(rs)["ip"]
        return
    with pytest.raises(ErrorGroup) as ei:
        emit_iptables(rs)
    e = ei.value.errors[0]
    assert (needle in e.message, e.loc.line, ei.value.exit_code) == (True, 4, 1), e.format()
    # the other family keeps its own ICMP type 255 (icmpv6 has no wildcard)
    if "icmp" in rule:
        v6 = parse_nft(text.replace("table ip ", "table ip6 ").replace("icmp ", "icmpv6 "), "w.nft")
        assert "--icmpv6-type 255" in emit_iptables(v6)["ip6"]


@pytest.mark.parametrize("text", ["x\n-A INPUT -j ACCEPT", "a\x00b", "tab\there"])
def test_control_characters_are_never_written_into_restore_or_nft_text(text):
    """A newline would end the iptables-restore line and start another rule; a NUL ends what
    iptables-restore reads; nft's scanner stops at them.  Log prefixes are refused, comments
    (no meaning) are written with blanks in nft and refused in iptables-restore text."""
    rule = ir.Rule((), (ir.Log(text, 4),), ir.Accept(), text, ir.Loc("p", 3, 1))
    rs = ir.Ruleset((ir.Table("ip", "filter", (ir.Chain(
        "INPUT", (rule,), ir.iptables_base_hook("filter", "INPUT", "drop")),)),))
    with pytest.raises(ErrorGroup) as ei:
        emit_iptables(rs)
    assert ei.value.errors[0].loc.line == 3 and "control character" in ei.value.errors[0].message
    with pytest.raises(ErrorGroup) as ei:
        emit_nft(rs)
    assert "control character" in ei.value.errors[0].message
    out = emit_nft(ir.Ruleset((ir.Table("ip", "filter", (ir.Chain(
        "INPUT", (attrs.evolve(rule, statements=()),),
        ir.iptables_base_hook("filter", "INPUT", "drop")),)),)))
    assert all(ord(c) >= 0x20 for line in out.splitlines() for c in line if c != "\t")


def test_tcp_flags_tests_are_written_back_as_they_were():
    """`--tcp-flags FIN FIN,SYN` never matches (SYN is outside the mask): writing it as
    `FIN FIN` matched every FIN; `--tcp-flags NONE NONE` is not `-p tcp` alone (-m tcp never
    matches a later fragment)."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp -m tcp --tcp-flags FIN FIN,SYN -j DROP\n"
            "-A INPUT -p tcp -m tcp --tcp-flags NONE NONE -j DROP\n"
            "-A INPUT -p tcp -m tcp ! --tcp-flags FIN FIN,SYN -j DROP\nCOMMIT\n")
    rs = parse_iptables_save(text, "f.rules", "ip")
    out = emit_iptables(rs)["ip"]
    assert "--tcp-flags FIN FIN,SYN" in out and "--tcp-flags NONE NONE" in out
    assert parse_iptables_save(out, "o.rules", "ip") == rs


def test_icmp_type_code_and_tos_survive_iptables_nft_iptables():
    """fwc's nft forms of `--icmp-type 3/4`, `! --icmp-type 3/4` and `-m tos --tos` read back
    to iptables rules with the same IR (they were refused before)."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT\n"
            "-A INPUT -p icmp -m icmp ! --icmp-type 3/4 -j DROP\n"
            "-A INPUT -m tos --tos Minimize-Delay -j ACCEPT\nCOMMIT\n")
    rs = parse_iptables_save(text, "r.rules", "ip")
    back = parse_iptables_save(emit_iptables(parse_nft(emit_nft(rs), "o.nft"))["ip"], "b", "ip")
    assert [r.matches for r in back.tables[0].chains[0].rules] == \
        [r.matches for r in rs.tables[0].chains[0].rules]


@pytest.mark.parametrize("hook,action,ok", [
    ("postrouting", "snat to 192.0.2.1 fully-random,persistent", True),
    ("postrouting", "masquerade random,fully-random", True),
    ("postrouting", "masquerade persistent", False),
    ("prerouting", "dnat to 192.0.2.1 persistent,random", True),
    ("prerouting", "dnat to 192.0.2.1 fully-random", False),
    ("prerouting", "redirect to :53 random", True),
    ("prerouting", "redirect to :53 persistent", False),
])
def test_nat_flags_a_target_lacks_are_refused(hook, action, ok):
    """iptables 1.8.9 says "unknown option" for MASQUERADE --persistent, DNAT --random-fully
    and REDIRECT --persistent/--random-fully: refused here, located, not written."""
    text = (f"table ip t {{\n chain c {{\n  type nat hook {hook} priority 0;\n"
            f"  udp dport 53 {action}\n }}\n}}\n")
    rs = parse_nft(text, "n.nft")
    if ok:
        assert "-j " in emit_iptables(rs)["ip"]
        return
    with pytest.raises(ErrorGroup) as ei:
        emit_iptables(rs)
    (e,) = ei.value.errors
    assert e.loc.line == 4 and "has no --" in e.message, e.message


@pytest.mark.parametrize("stmt,target", [("ip ttl set 23", "TTL"), ("ip dscp set af23", "DSCP")])
def test_mangle_only_targets_outside_mangle_are_refused(stmt, target):
    """xt_TTL/HL/DSCP/TOS/CHECKSUM are registered for the mangle table only: iptables-restore
    refused fwc's `-A INPUT -j TTL` in filter (found running nft's tests/py vectors through
    the kernel); at the mangle priority they are written."""
    for prio, ok in (("0", False), ("mangle", True)):
        rs = parse_nft(f"table ip t {{\n chain c {{\n  type filter hook output priority {prio};\n"
                       f"  {stmt}\n }}\n}}\n", "m.nft")
        if ok:
            assert f"-j {target}" in emit_iptables(rs)["ip"]
        else:
            with pytest.raises(ErrorGroup, match=f"{target} outside the mangle table"):
                emit_iptables(rs)


UNREACHED = """table inet fw {
 chain input { type filter hook input priority filter; policy drop; jump used; }
 chain dstnat { type nat hook prerouting priority dstnat; tcp dport 8080 redirect to :80; }
 chain used { tcp dport 22 accept; }
 chain handle_reject { meta l4proto tcp reject with tcp reset; reject; }
 chain nat_spare { dnat ip to 10.0.0.1; }
}
"""


def test_a_chain_no_base_chain_reaches_is_kept_in_filter_and_said_so():
    """fw4 declares chains nothing jumps to (handle_reject): they decide no packet, so any table
    would do; fwc keeps them in filter, with a comment saying why, unless filter cannot hold
    them (NAT), which stays refused."""
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(parse_nft(UNREACHED, "fw.nft"))
    assert [x.message for x in e.value.errors] == [
        "user chain nat_spare: no base chain jumps to it, so its iptables table is unknown"]
    out = emit_iptables(parse_nft(UNREACHED.replace(" chain nat_spare { dnat ip to 10.0.0.1; }\n",
                                                    ""), "fw.nft"))
    for fam in ("ip", "ip6"):
        text = out[fam]
        filt = text[text.index("*filter"):text.index("COMMIT", text.index("*filter"))]
        assert ":handle_reject - [0:0]" in filt
        assert "# handle_reject: no base chain jumps to it (it decides no packet)" in filt
        assert "-A handle_reject -p tcp -j REJECT --reject-with tcp-reset" in filt
        assert parse_iptables_save(text, "back", family=fam).table(fam, "filter") \
            .chain("handle_reject") is not None
