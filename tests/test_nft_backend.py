"""nft backend: one IR construct at a time -> the nft text it must become."""

from __future__ import annotations

import ipaddress
import os

import pytest

from fwc import ir
from fwc.backends.nft import emit_nft, emit_nft_with_warnings, priority_text
from fwc.backends.nft_names import is_bare_name, safe_name
from fwc.errors import ErrorGroup, Unsupported
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.iptables_ext import REJECT_V4, REJECT_V6

N = ipaddress.ip_network
A = ipaddress.ip_address
R = ir.Range
TCP = frozenset({6})


def fs(*xs):
    return frozenset(xs)


def ruleset(*rules, family="ip", table="filter", chain="INPUT", base=True, sets=()):
    hook = ir.iptables_base_hook(table, chain) if base else None
    return ir.Ruleset((ir.Table(family, table, (ir.Chain(chain, tuple(rules), hook),),
                                sets=tuple(sets)),))


def rule_lines(*rules, **kw) -> list[str]:
    """The rule lines of the single chain emitted for `rules`."""
    text = emit_nft(ruleset(*rules, **kw), counters=kw.pop("counters", False)) if False else \
        emit_nft(ruleset(*rules, **kw))
    return chain_body(text)


def chain_body(text: str, chain: str | None = None) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("chain "):
            inside = chain is None or s == f"chain {chain} {{"
            continue
        if inside and s == "}":
            inside = False
            continue
        if inside and s and not s.startswith("type "):
            lines.append(s)
    return lines


def one(*matches, verdict=ir.Accept(), statements=(), **kw) -> str:
    lines = rule_lines(ir.Rule(tuple(matches), tuple(statements), verdict), **kw)
    assert len(lines) == 1, lines
    return lines[0]


def refused(*matches, verdict=ir.Accept(), statements=(), **kw) -> str:
    with pytest.raises(ErrorGroup) as e:
        emit_nft(ruleset(ir.Rule(tuple(matches), tuple(statements), verdict,
                                 loc=ir.Loc("f", 7, 1)), **kw))
    (err,) = e.value.errors
    assert isinstance(err, Unsupported) and err.loc == ir.Loc("f", 7, 1)
    assert "cannot be expressed in nftables" in err.message
    return err.message


# --------------------------------------------------------------------------- table framing

def test_table_is_replaced_not_flushed():
    text = emit_nft(ruleset(ir.Rule(verdict=ir.Accept())))
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[:3] == ["table ip filter {}", "delete table ip filter", "table ip filter {"]
    assert "flush ruleset" not in text
    assert "\t\ttype filter hook input priority filter; policy accept;" in text


@pytest.mark.parametrize("prio,hook,text", [
    (0, "input", "filter"), (-300, "prerouting", "raw"), (-150, "output", "mangle"),
    (-100, "prerouting", "dstnat"), (100, "postrouting", "srcnat"), (50, "input", "security"),
    (10, "input", "filter + 10"), (-105, "prerouting", "dstnat - 5"), (100, "input", "100"),
    (-100, "output", "-100"), (1000, "input", "1000"),
])
def test_priority_names(prio, hook, text):
    assert priority_text(prio, hook) == text


def test_nat_chain_priorities_and_policy():
    rs = ir.Ruleset((ir.Table("ip", "nat", (
        ir.Chain("PREROUTING", (), ir.iptables_base_hook("nat", "PREROUTING")),
        ir.Chain("POSTROUTING", (), ir.iptables_base_hook("nat", "POSTROUTING")),
        ir.Chain("OUTPUT", (), ir.iptables_base_hook("nat", "OUTPUT")))),))
    text = emit_nft(rs)
    assert "type nat hook prerouting priority dstnat; policy accept;" in text
    assert "type nat hook postrouting priority srcnat; policy accept;" in text
    assert "type nat hook output priority -100; policy accept;" in text


def test_nat_chain_policy_drop_refused():
    rs = ir.Ruleset((ir.Table("ip", "nat", (
        ir.Chain("PREROUTING", (), ir.iptables_base_hook("nat", "PREROUTING", "drop")),)),))
    with pytest.raises(ErrorGroup):
        emit_nft(rs)


@pytest.mark.parametrize("name,ok", [("fwd-ext", True), ("DOCKER-USER", True), ("input", True),
                                     ("log", False), ("tcp", False), ("a b", False),
                                     ("1abc", False), ("x+", False), ("f2b-sshd", True)])
def test_bare_names(name, ok):
    assert is_bare_name(name) == ok


def test_unacceptable_chain_name_renamed_with_jumps():
    rs = ir.Ruleset((ir.Table("ip", "filter", (
        ir.Chain("INPUT", (ir.Rule(verdict=ir.Jump("log")),), ir.iptables_base_hook("filter", "INPUT")),
        ir.Chain("log", (ir.Rule(statements=(ir.Log(prefix="x"),)),)))),))
    text = emit_nft(rs)
    new = safe_name("log", set())
    assert new != "log" and is_bare_name(new)
    assert f"jump {new}" in text and f"chain {new} {{" in text


# --------------------------------------------------------------------------- matches

def test_proto_implied_by_port_is_omitted():
    assert one(ir.Proto(TCP), ir.Port("tcp", "dport", (R(22, 22),))) == "tcp dport 22 accept"


def test_proto_alone_and_negated():
    assert one(ir.Proto(TCP)) == "ip protocol tcp accept"
    assert one(ir.Proto(fs(6, 17), negate=True)) == "ip protocol != { tcp, udp } accept"
    assert one(ir.Proto(fs(47)), family="ip6") == "meta l4proto gre accept"


def test_addresses():
    assert one(ir.Address("saddr", (N("10.0.0.0/8"),))) == "ip saddr 10.0.0.0/8 accept"
    assert one(ir.Address("daddr", (N("192.0.2.1/32"),), negate=True)) == \
        "ip daddr != 192.0.2.1 accept"
    two = (N("10.0.0.0/8"), ir.AddrRange(A("192.0.2.1"), A("192.0.2.9")))
    assert one(ir.Address("saddr", two, negate=True)) == \
        "ip saddr != { 10.0.0.0/8, 192.0.2.1-192.0.2.9 } accept"
    assert one(ir.Address("saddr", (N("2001:db8::/32"),)), family="ip6") == \
        "ip6 saddr 2001:db8::/32 accept"


def test_address_of_wrong_family_refused():
    refused(ir.Address("saddr", (N("2001:db8::/32"),)))


def test_interfaces():
    assert one(ir.Interface("iifname", "eth0")) == 'iifname "eth0" accept'
    assert one(ir.Interface("oifname", "eth+", negate=True)) == 'oifname != "eth*" accept'
    # nft 1.0.6: only a final '*' is special; a backslash elsewhere stays in the name
    assert one(ir.Interface("iifname", "a*b")) == 'iifname "a*b" accept'
    assert one(ir.Interface("iifname", "a*")) == 'iifname "a\\*" accept'
    assert one(ir.Interface("iifname", "a*+")) == 'iifname "a**" accept'
    assert one(ir.Interface("iifname", "+", negate=True)) == 'iifname "INVAL/D" accept'
    assert one(ir.Interface("iifname", "+")) == "accept"


def test_ports():
    assert one(ir.Port("udp", "sport", (R(1024, 65535),))) == "udp sport 1024-65535 accept"
    assert one(ir.Port("tcp", "dport", (R(22, 22), R(80, 80)), negate=True)) == \
        "tcp dport != { 22, 80 } accept"


def test_multiport_ports_is_one_pair_lookup():
    lines = rule_lines(ir.Rule((ir.Proto(TCP), ir.Port("tcp", "port", (R(53, 53), R(8, 9)))),
                               verdict=ir.Drop()))
    # (sport in R) or (sport not in R and dport in R): disjoint elements, as nft 1.0.6 needs
    assert lines == ["tcp sport . tcp dport { 8-9 . 0-65535, 53 . 0-65535, 0-7 . 8-9, 0-7 . 53, "
                     "10-52 . 8-9, 10-52 . 53, 54-65535 . 8-9, 54-65535 . 53 } drop"]


def test_multiport_ports_negated_is_a_negated_pair_lookup():
    # not `tcp sport != 53 tcp dport != 53`: nft 1.0.6 merges that into "not both 53"
    assert one(ir.Port("tcp", "port", (R(53, 53),), negate=True), verdict=ir.Jump("INPUT")) == \
        "tcp sport . tcp dport != { 53 . 0-65535, 0-52 . 53, 54-65535 . 53 } jump INPUT"


def test_multiport_ports_with_jump_statement_or_limit():
    p = ir.Port("tcp", "port", (R(53, 53),))
    assert one(p, verdict=ir.Jump("INPUT")).endswith("54-65535 . 53 } jump INPUT")
    assert "log" in one(p, statements=(ir.Log(),))
    assert "limit rate" in one(p, ir.Limit(3, "minute"))


def test_tcp_flags():
    m = ir.TcpFlags(fs("SYN", "RST", "ACK", "FIN"), fs("SYN"))
    assert one(ir.Proto(TCP), m) == "tcp flags & (fin|syn|rst|ack) == syn accept"
    m = ir.TcpFlags(fs("SYN", "ECE"), fs(), negate=True)
    assert one(m) == "tcp flags & (syn|ecn) != 0x0 accept"


def test_icmp():
    assert one(ir.Proto(fs(1)), ir.Icmp("ip", 8)) == "icmp type echo-request accept"
    assert one(ir.Icmp("ip", 3, R(1, 3))) == \
        "icmp type destination-unreachable icmp code 1-3 accept"
    assert one(ir.Icmp("ip", 3, R(4, 4), negate=True)) == \
        "icmp type . icmp code != { destination-unreachable . 4 } accept"
    assert one(ir.Icmp("ip6", 135), family="ip6") == "icmpv6 type nd-neighbor-solicit accept"
    assert one(ir.Icmp("ip", None)) == "ip protocol icmp accept"


def test_ct_state_negation_tests_bits():
    st = fs("ESTABLISHED", "RELATED")
    assert one(ir.CtState(st)) == "ct state established,related accept"
    # `ct state != a,b` would compare the whole value: it must be the bit test `!`
    assert one(ir.CtState(st, negate=True)) == "ct state ! established,related accept"
    assert one(ir.CtState(fs("NEW"), negate=True)) == "ct state != new accept"


def test_ct_state_snat_dnat_is_ct_status_any_bit():
    assert one(ir.CtState(fs("SNAT", "DNAT"))) == "ct status snat,dnat accept"


def test_ct_state_mixed_real_and_virtual_split():
    lines = rule_lines(ir.Rule((ir.CtState(fs("NEW", "DNAT")),), verdict=ir.Accept()))
    assert lines == ["ct state new accept", "ct status dnat accept"]


def test_ct_state_negated_virtual_keeps_untracked_packets():
    # ! --ctstate DNAT also matches packets without conntrack, which `ct status` cannot see
    lines = rule_lines(ir.Rule((ir.CtState(fs("DNAT"), negate=True),), verdict=ir.Drop()))
    assert lines == ["ct state invalid,untracked drop", "ct status ! dnat drop"]
    lines = rule_lines(ir.Rule((ir.CtState(fs("INVALID", "DNAT"), negate=True),),
                               verdict=ir.Drop()))
    assert lines == ["ct state untracked drop", "ct state != invalid ct status ! dnat drop"]


def test_ct_status_direction_proto_addresses():
    assert one(ir.CtStatus(fs("ASSURED", "CONFIRMED"))) == "ct status assured,confirmed accept"
    assert one(ir.CtStatus(fs("SNAT"), negate=True)) == "ct status ! snat accept"
    assert one(ir.CtDirection("REPLY")) == "ct direction reply accept"
    assert one(ir.CtProto(17, negate=True)) == "ct original protocol != udp accept"
    assert one(ir.CtAddress("reply", "daddr", (N("10.0.0.0/8"), N("192.0.2.1/32")),
                            negate=True)) == "ct reply ip daddr != { 10.0.0.0/8, 192.0.2.1 } accept"
    assert one(ir.CtProto(6), ir.CtPort("original", "sport", (R(443, 444),))) == \
        "ct original protocol tcp ct original proto-src 443-444 accept"
    assert "ctproto" in refused(ir.CtPort("original", "sport", (R(443, 444),)))


def test_ct_expire_is_whole_seconds():
    assert one(ir.CtExpire(R(10000, 20999))) == "ct expiration 10s-20s999ms accept"
    assert one(ir.CtExpire(R(30000, 30000))) == "ct expiration 30s accept"
    assert one(ir.CtExpire(R(0, 90500))) == "ct expiration 0s-1m30s500ms accept"


def test_marks():
    assert one(ir.Mark("meta", 1)) == "meta mark 0x1 accept"
    assert one(ir.Mark("meta", 1, 0xFF, negate=True)) == "meta mark & 0xff != 0x1 accept"
    assert one(ir.Mark("ct", 2, 0xF0)) == "ct mark & 0xf0 == 0x2 accept"


def test_misc_meta_matches():
    assert one(ir.Mac("00:11:22:33:44:55")) == "ether saddr 00:11:22:33:44:55 accept"
    assert one(ir.AddrType("daddr", fs("LOCAL"))) == "fib daddr type local accept"
    assert one(ir.AddrType("daddr", fs("LOCAL", "BROADCAST"), "in", negate=True)) == \
        "fib daddr . iif type != { broadcast, local } accept"
    assert one(ir.SkUid(R(1000, 1000))) == "meta skuid 1000 accept"
    assert one(ir.SkGid(R(10, 20))) == "meta skgid 10-20 accept"
    assert one(ir.PktType("broadcast", negate=True)) == "meta pkttype != broadcast accept"
    assert one(ir.Ttl("ip", "lt", 5)) == "ip ttl < 5 accept"
    assert one(ir.Ttl("ip6", "ne", 64), family="ip6") == "ip6 hoplimit != 64 accept"
    assert one(ir.Dscp(0x2E)) == "ip dscp 0x2e accept"
    assert one(ir.Dscp(0x2E), family="ip6") == "ip6 dscp 0x2e accept"
    assert one(ir.Tos(0x10, 0x3F)) == "@nh,8,8 & 0x3f == 0x10 accept"
    assert one(ir.Fragment()) == "ip frag-off & 0x1fff != 0 accept"
    assert one(ir.Fragment(negate=True)) == "ip frag-off & 0x1fff == 0 accept"


def test_negated_owner_takes_a_chain_of_its_own():
    # ! --uid-owner also matches packets without a socket, which `meta skuid != 0` does not:
    # `meta skuid 0 return` in a chain of its own (kernel: test_socket_kernel.py)
    assert rule_lines(ir.Rule((ir.SkUid(R(0, 0), negate=True),), (), ir.Accept())) == \
        ["jump fwc_owner_1", "meta skuid 0 return", "accept"]  # (the chain's rules after it)
    text = "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner ! --uid-owner 0 -j RETURN\nCOMMIT\n"
    with pytest.raises(ErrorGroup, match="RETURN"):
        emit_nft(parse_iptables_save(text))


def test_length_per_family():
    assert one(ir.Length(R(100, 200))) == "ip length 100-200 accept"
    # ip6 length is the payload length
    assert one(ir.Length(R(100, 200), negate=True), family="ip6") == "ip6 length != 60-160 accept"
    assert one(ir.Length(R(0, 100)), family="ip6") == "ip6 length 0-60 accept"


def test_limit():
    assert one(ir.Limit(3, "minute", 5)) == "limit rate 3/minute burst 5 packets accept"
    assert one(ir.Limit(10, "second", 20, negate=True)) == \
        "limit rate over 10/second burst 20 packets accept"


def test_set_lookup_declares_the_set():
    s = ir.ExternalSet("whitelist", "ip", ("addr",), True)
    text = emit_nft(ruleset(ir.Rule((ir.SetLookup("whitelist", ("src",), negate=True),),
                                    verdict=ir.Drop()), sets=[s]))
    assert "ip saddr != @whitelist drop" in text
    assert "\tset whitelist {\n\t\ttype ipv4_addr; flags interval\n\t}" in text


def test_ipsec_policy():
    assert one(ir.IpsecPolicy("in", True)) == "meta ipsec exists accept"
    assert one(ir.IpsecPolicy("in", False)) == "meta ipsec missing accept"
    assert one(ir.IpsecPolicy("out", True)) == "rt ipsec exists accept"


def test_statistic():
    # xt_statistic: (random & 0x7fffffff) < lround(p * 2^31)
    assert one(ir.Statistic("random", probability=0.3)) == \
        f"meta random & 2147483647 < {round(0.3 * 2**31)} accept"
    assert one(ir.Statistic("random", probability=0.25, negate=True)) == \
        "meta random & 2147483647 >= 536870912 accept"
    assert one(ir.Statistic("random", probability=0.1)) == \
        "meta random & 2147483647 < 214748365 accept"
    # --every 3 --packet 0 matches the 1st, 4th... packet (measured, see the kernel test);
    # numgen inc gives 0, 1, 2, 0...
    assert one(ir.Statistic("nth", every=3, packet=0)) == "numgen inc mod 3 0 accept"
    assert one(ir.Statistic("nth", every=3, packet=2, negate=True)) == \
        "numgen inc mod 3 != 2 accept"


@pytest.mark.parametrize("m", [ir.SocketExists(), ir.PhysDevBridged(), ir.Helper("")])
def test_refused_matches(m):
    refused(m)


def test_helper_is_ct_helper_of_the_master_and_its_negation_a_chain_of_its_own():
    assert one(ir.Helper("ftp")) == 'ct helper "ftp" accept'
    text = emit_nft(ruleset(ir.Rule((ir.Proto(fs(6)), ir.Helper("ftp", negate=True)),
                                    verdict=ir.Drop())))
    assert 'ct helper "ftp" return' in text, text


# --------------------------------------------------------------------------- statements

def test_log_and_nflog():
    s = ir.Log(prefix="x ", level=4, flags=fs("tcp-sequence", "tcp-options", "uid"))
    assert one(statements=(s,), verdict=None) == \
        'log prefix "x " level warn flags tcp sequence,options flags skuid'
    assert one(statements=(ir.NfLog(2, "y", 128, 3),), verdict=None) == \
        'log group 2 prefix "y" snaplen 128 queue-threshold 3'
    assert "double quote" in refused(statements=(ir.Log(prefix='a"b'),))


def test_marks_set_and_copy():
    assert one(statements=(ir.SetMark("meta", 1),), verdict=None) == "meta mark set 0x1"
    assert one(statements=(ir.SetMark("meta", 1, 0xFF),), verdict=None) == \
        "meta mark set meta mark and 0xffffff00 or 0x1"
    assert one(statements=(ir.SetMark("ct", 0x100, 0xF),), verdict=None) == \
        "ct mark set ct mark and 0xfffffff0 xor 0x100"
    assert one(statements=(ir.CopyMark("ct"),), verdict=None) == "ct mark set meta mark"
    assert one(statements=(ir.CopyMark("meta", 0xFF),), verdict=None) == \
        "meta mark set ct mark and 0xff"
    # a copy into some bits only: bit by bit, in a chain of its own (kernel-checked in
    # tests/kernel/test_connmark_mask_kernel.py)
    out = emit_nft(ruleset(ir.Rule((ir.Proto(TCP),), (ir.CopyMark("meta", 0x3, 0x6),), None)))
    assert "ip protocol tcp jump fwc_connmark_1" in out
    body = out.split("chain fwc_connmark_1 {")[1].split("\n\t}")[0].split("\n")
    assert [x.strip() for x in body if x.strip()] == [
        "ct state != { invalid, untracked } meta mark set meta mark and 0xfffffff9",
        "ct mark and 0x1 == 0x1 meta mark set meta mark xor 0x1",
        "ct mark and 0x2 == 0x2 meta mark set meta mark or 0x2"]
    refused(statements=(ir.CopyMark("meta", 0xFF, 0xFF),), verdict=ir.Return())


def test_other_statements():
    assert one(statements=(ir.Notrack(),), verdict=None, table="raw", chain="PREROUTING") == \
        "notrack"
    assert one(statements=(ir.CtZoneSet(1),), verdict=None) == "ct zone set 1"
    assert one(ir.Proto(TCP), statements=(ir.TcpMss(),), verdict=None) == \
        "ip protocol tcp tcp option maxseg size set rt mtu"
    assert one(statements=(ir.SetTtl("ip", "set", 64),), verdict=None) == "ip ttl set 64"
    assert one(statements=(ir.SetDscp(0x2E),), verdict=None) == "ip dscp set 0x2e"
    assert one(statements=(ir.SetTos(0x10 << 2, 0xFC),), verdict=None) == "ip dscp set 0x10"
    assert one(statements=(ir.Trace(),), verdict=None) == "meta nftrace set 1"
    assert one(statements=(ir.Counter(3, 400),)) == "counter packets 3 bytes 400 accept"
    refused(statements=(ir.Checksum(),))
    refused(statements=(ir.SetTtl("ip", "inc", 1),))


def test_ct_helper_object_declared():
    rule = ir.Rule((ir.Proto(TCP), ir.Port("tcp", "dport", (R(21, 21),))),
                   (ir.CtHelperSet("ftp"),))
    text = emit_nft(ruleset(rule, chain="FORWARD"))
    assert '\tct helper ftp-tcp {\n\t\ttype "ftp" protocol tcp;\n\t}' in text
    assert 'tcp dport 21 ct helper set "ftp-tcp"' in text
    # iptables does it in raw, before conntrack: nft replays the raw chain after conntrack
    raw = emit_nft(ruleset(rule, table="raw", chain="PREROUTING"))
    assert "type filter hook prerouting priority -199; policy accept;" in raw
    assert raw.count('ct helper set "ftp-tcp"') == 1
    # ...unless the replay could decide differently (a mark set before it)
    marked = ir.Rule((), (ir.SetMark("meta", 1),))
    refused_rs = ir.Ruleset((ir.Table("ip", "raw", (ir.Chain(
        "PREROUTING", (marked, rule), ir.iptables_base_hook("raw", "PREROUTING")),)),))
    with pytest.raises(ErrorGroup):
        emit_nft(refused_rs)


def test_counters_option():
    text = emit_nft(ruleset(ir.Rule(verdict=ir.Accept())), counters=True)
    assert chain_body(text) == ["counter accept"]


# --------------------------------------------------------------------------- verdicts

def test_rejects():
    assert one(verdict=ir.Reject()) == "reject"
    assert one(verdict=ir.Reject("icmp-host-unreachable")) == \
        "reject with icmp type host-unreachable"
    assert one(verdict=ir.Reject("icmp-port-unreachable")) == "reject"
    assert one(verdict=ir.Reject("icmp6-adm-prohibited"), family="ip6") == \
        "reject with icmpv6 type admin-prohibited"
    assert one(ir.Proto(TCP), verdict=ir.Reject("tcp-reset")) == \
        "ip protocol tcp reject with tcp reset"


def test_jump_goto_return_queue():
    rs = ir.Ruleset((ir.Table("ip", "filter", (
        ir.Chain("INPUT", (ir.Rule(verdict=ir.Jump("fwd-ext")), ir.Rule(verdict=ir.Goto("fwd-ext")),
                           ir.Rule(verdict=ir.Queue(R(1, 3), bypass=True, fanout=True))),
                 ir.iptables_base_hook("filter", "INPUT")),
        ir.Chain("fwd-ext", (ir.Rule(verdict=ir.Return()),)))),))
    text = emit_nft(rs)
    assert chain_body(text, "INPUT") == ["jump fwd-ext", "goto fwd-ext",
                                         "queue num 1-3 bypass,fanout"]
    assert chain_body(text, "fwd-ext") == ["return"]


def test_jump_to_missing_chain_refused():
    refused(verdict=ir.Jump("nowhere"))


def nat(rule, chain="POSTROUTING", family="ip"):
    return one(*rule.matches, verdict=rule.verdict, table="nat", chain=chain, family=family)


def test_nat_verdicts():
    t = ir.NatTarget(N("192.0.2.1/32"), R(1000, 2000))
    tcp = (ir.Proto(TCP),)
    assert nat(ir.Rule(tcp, verdict=ir.Snat((t,), fs("random", "persistent")))) == \
        "ip protocol tcp snat to 192.0.2.1:1000-2000 random,persistent"
    rng = ir.NatTarget(ir.AddrRange(A("192.0.2.1"), A("192.0.2.9")))
    assert nat(ir.Rule(verdict=ir.Dnat((rng,))), "PREROUTING") == "dnat to 192.0.2.1-192.0.2.9"
    assert nat(ir.Rule(tcp, verdict=ir.Dnat((ir.NatTarget(None, R(8080, 8080)),))),
               "PREROUTING") == "ip protocol tcp dnat to :8080"
    v6 = ir.NatTarget(N("2001:db8::1/128"), R(80, 80))
    assert nat(ir.Rule(tcp, verdict=ir.Dnat((v6,))), "PREROUTING", "ip6") == \
        "meta l4proto tcp dnat to [2001:db8::1]:80"
    assert nat(ir.Rule(tcp, verdict=ir.Masquerade(R(1024, 65535), fs("random")))) == \
        "ip protocol tcp masquerade to :1024-65535 random"
    assert nat(ir.Rule(tcp, verdict=ir.Redirect(R(8080, 8080))), "PREROUTING") == \
        "ip protocol tcp redirect to :8080"
    assert nat(ir.Rule(verdict=ir.Netmap("saddr", N("198.51.100.0/24")))) == \
        "snat ip prefix to ip saddr map { 0.0.0.0/0 : 198.51.100.0/24 }"


def test_comment_quotes():
    assert one(verdict=ir.Accept(), **{}) == "accept"
    lines = rule_lines(ir.Rule(verdict=ir.Accept(), comment='say "hi"'))
    assert lines == ["accept comment \"say 'hi'\""]


# --------------------------------------------------------------------------- errors

def test_all_unsupported_rules_reported_together():
    rules = [ir.Rule((ir.Helper(""),), verdict=ir.Accept(), loc=ir.Loc("f", 1, 1)),
             ir.Rule(verdict=ir.Accept()),
             ir.Rule(statements=(ir.Checksum(),), loc=ir.Loc("f", 3, 1))]
    with pytest.raises(ErrorGroup) as e:
        emit_nft(ruleset(*rules))
    assert [err.loc.line for err in e.value.errors] == [1, 3]
    assert e.value.exit_code == 1


def test_drop_unsupported_leaves_a_comment_and_warns():
    rules = [ir.Rule((ir.Helper(""),), verdict=ir.Accept(), loc=ir.Loc("f", 1, 1)),
             ir.Rule(verdict=ir.Drop())]
    text, warnings = emit_nft_with_warnings(ruleset(*rules), drop_unsupported=True)
    assert [w.loc.line for w in warnings] == [1]
    body = chain_body(text)
    assert body[0].startswith("# fwc: dropped unsupported rule: ") and "-m helper" in body[0]
    assert body[1:] == ["drop"]


# --------------------------------------------------------------------------- layout options

def two_tables():
    filt = ir.Table("ip", "filter", (
        ir.Chain("INPUT", (ir.Rule(verdict=ir.Jump("svc")),), ir.iptables_base_hook("filter", "INPUT", "drop")),
        ir.Chain("svc", (ir.Rule((ir.Port("tcp", "dport", (R(22, 22),)),), verdict=ir.Accept()),))))
    mangle = ir.Table("ip", "mangle", (
        ir.Chain("PREROUTING", (ir.Rule(verdict=ir.Jump("svc")),),
                 ir.iptables_base_hook("mangle", "PREROUTING")),
        ir.Chain("svc", (ir.Rule(statements=(ir.SetMark("meta", 1),)),))))
    return ir.Ruleset((filt, mangle))


def test_single_table_option_prefixes_non_filter_chains():
    text = emit_nft(two_tables(), table="fw")
    assert text.count("delete table ip fw") == 1
    assert chain_body(text, "INPUT") == ["jump svc"]
    assert chain_body(text, "mangle_PREROUTING") == ["jump mangle_svc"]
    assert chain_body(text, "mangle_svc") == ["meta mark set 0x1"]
    assert "type filter hook prerouting priority mangle; policy accept;" in text


def test_without_table_option_each_table_kept():
    text = emit_nft(two_tables())
    assert "delete table ip filter" in text and "delete table ip mangle" in text
    assert "chain mangle_svc" not in text


def dual(rules4, rules6, policy4="drop", policy6="drop"):
    t4 = ir.Table("ip", "filter", (ir.Chain("INPUT", tuple(rules4),
                                            ir.iptables_base_hook("filter", "INPUT", policy4)),))
    t6 = ir.Table("ip6", "filter", (ir.Chain("INPUT", tuple(rules6),
                                             ir.iptables_base_hook("filter", "INPUT", policy6)),))
    return ir.Ruleset((t4, t6))


def test_inet_merge_shares_identical_rules_and_guards_the_rest():
    est = ir.Rule((ir.CtState(fs("ESTABLISHED", "RELATED")),), verdict=ir.Accept())
    ssh = ir.Rule((ir.Proto(TCP), ir.Port("tcp", "dport", (R(22, 22),))), verdict=ir.Accept())
    v4 = ir.Rule((ir.Address("saddr", (N("192.0.2.0/24"),)),), verdict=ir.Accept())
    v6 = ir.Rule((ir.Address("saddr", (N("2001:db8::/32"),)),), verdict=ir.Accept())
    icmp4 = ir.Rule((ir.Proto(fs(1)),), verdict=ir.Accept())
    text = emit_nft(dual([est, v4, ssh, icmp4], [est, v6, ssh]), inet=True)
    assert "delete table inet filter" in text and "table ip " not in text
    assert chain_body(text) == [
        "ct state established,related accept",
        # an address of one family needs no guard: nft puts that family's test in front
        "ip saddr 192.0.2.0/24 accept",
        "ip6 saddr 2001:db8::/32 accept",
        "tcp dport 22 accept",
        "meta nfproto ipv4 meta l4proto icmp accept",
    ]
    assert "policy drop;" in text


def test_inet_merge_different_policies_become_a_guarded_final_drop():
    text = emit_nft(dual([], [], "drop", "accept"), inet=True)
    assert "policy accept;" in text
    assert chain_body(text) == ["meta nfproto ipv4 drop"]


def test_inet_merge_identical_ir_rendered_differently_per_family():
    # the same IR rule means `ip length` for IPv4 and `ip6 length` for IPv6
    r = ir.Rule((ir.Length(R(100, 200)),), verdict=ir.Drop())
    text = emit_nft(dual([r], [r]), inet=True)
    assert chain_body(text) == ["meta nfproto ipv4 ip length 100-200 drop",
                                "meta nfproto ipv6 ip6 length 60-160 drop"]


def test_inet_table_from_ir_splits_family_dependent_matches():
    r = ir.Rule((ir.Dscp(0x2E),), verdict=ir.Drop())
    lines = rule_lines(r, family="inet")
    assert lines == ["meta nfproto ipv4 ip dscp 0x2e drop", "meta nfproto ipv6 ip6 dscp 0x2e drop"]


def test_inet_reject_default_and_icmpx():
    r = ir.Rule(verdict=ir.Reject("admin-prohibited"))
    assert rule_lines(r, family="inet") == ["reject with icmpx type admin-prohibited"]


def test_tcp_reset_without_tcp_restriction_drops_the_rest():
    # iptables drops a non-TCP packet it cannot answer with a RST; nft's reset is TCP only
    lines = rule_lines(ir.Rule((ir.Interface("iifname", "eth0"),), verdict=ir.Reject("tcp-reset"),
                               comment="r"))
    assert lines == ['meta l4proto tcp iifname "eth0" reject with tcp reset comment "r"',
                     'iifname "eth0" drop comment "r"']
    refused(statements=(ir.Log(),), verdict=ir.Reject("tcp-reset"))


def test_nft_native_nodes():
    fm = ir.FieldMatch("meta iifgroup", (3, ir.Range(5, 7)), negate=True)
    assert one(fm) == "meta iifgroup != { 3, 5-7 } accept"
    assert one(ir.FieldMatch("ip6 flowlabel", (5,), "gt", negate=True), family="ip6") == \
        "ip6 flowlabel <= 5 accept"
    assert one(ir.FieldMatch("meta cpu", (1,), mask=0x3)) == "meta cpu & 0x3 == 1 accept"
    assert one(ir.FieldMatch("iifkind", ("vxlan",))) == 'iifkind "vxlan" accept'
    assert one(ir.SetMatch(("ip saddr", "tcp dport"),
                           elements=((N("192.0.2.0/24"), 22), (N("198.51.100.1/32"), R(80, 81))),
                           negate=True)) == \
        "ip saddr . tcp dport != { 192.0.2.0/24 . 22, 198.51.100.1 . 80-81 } accept"
    assert one(ir.CtCount(10, over=True), verdict=ir.Drop()) == "ct count over 10 drop"
    vm = ir.VerdictMap(("tcp dport",), elements=(((22,), ir.Accept()), ((23,), ir.Drop())))
    assert one(verdict=vm) == "tcp dport vmap { 22 : accept, 23 : drop }"
    assert one(verdict=ir.Continue()) == "continue"


def test_named_set_declared():
    s = ir.NamedSet("blocked", ("ipv4_addr",), frozenset({"interval"}),
                    ((N("192.0.2.0/24"),), (N("198.51.100.7/32"),)))
    text = emit_nft(ruleset(ir.Rule((ir.SetMatch(("ip saddr",), "blocked"),), verdict=ir.Drop()),
                            sets=[s]))
    assert ("\tset blocked {\n\t\ttype ipv4_addr\n\t\tflags interval\n"
            "\t\telements = { 192.0.2.0/24, 198.51.100.7 }\n\t}") in text
    assert "ip saddr @blocked drop" in text


def test_bare_reject_names_follow_the_table_family():
    assert one(verdict=ir.Reject("port-unreachable")) == "reject"
    assert one(verdict=ir.Reject("adm-prohibited"), family="ip6") == \
        "reject with icmpv6 type admin-prohibited"
    refused(verdict=ir.Reject("addr-unreachable"))


def test_negated_sport_and_dport_are_not_merged_by_nft():
    # nft 1.0.6 turns `tcp sport != 53 tcp dport != 53` into one 32-bit != ("not both 53")
    lines = rule_lines(ir.Rule((ir.Port("tcp", "sport", (R(53, 53),), negate=True),
                                ir.Port("tcp", "dport", (R(53, 53),), negate=True)),
                               verdict=ir.Drop()))
    assert lines == ["tcp sport != 53-53 tcp dport != 53-53 drop"]
    assert one(ir.Port("tcp", "dport", (R(53, 53),), negate=True)) == "tcp dport != 53 accept"


@pytest.mark.parametrize("family,names", [("ip", sorted(REJECT_V4)), ("ip6", sorted(REJECT_V6))])
def test_every_iptables_reject_reason_translates(family, names):
    for name in names:
        text = f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j REJECT --reject-with {name}\nCOMMIT\n"
        out = emit_nft(parse_iptables_save(text, family=family))
        assert "reject" in out, name


def test_tproxy_statement_without_verdict_round_trips():
    from fwc.frontends.nft import parse_nft
    for fam, rule, want in (
            ("ip", "ip protocol tcp meta mark set 0x1 tproxy to :7893", "tproxy to :7893"),
            ("inet", "meta l4proto tcp tproxy ip to 127.0.0.1:7893 accept",
             "tproxy ip to 127.0.0.1:7893"),
            ("inet", "meta l4proto udp tproxy ip6 to [::1]:53", "tproxy ip6 to [::1]:53")):
        text = (f"table {fam} m {{\n chain p {{ type filter hook prerouting priority -150;\n"
                f"  {rule}\n }}\n}}\n")
        rs = parse_nft(text)
        out = emit_nft(rs)
        assert want in out, out
        assert parse_nft(out).tables == rs.tables


def test_inet_per_address_limits_and_synproxy_round_trip():
    from fwc.frontends.nft import parse_nft
    text = """table inet f {
 set lim4 { type ipv4_addr; flags dynamic; timeout 1m; }
 set lim6 { type ipv6_addr; flags dynamic; timeout 1m; }
 chain i { type filter hook input priority 0; policy accept;
  update @lim4 { ip saddr limit rate over 5/second burst 5 packets } drop
  update @lim6 { ip6 saddr limit rate over 5/second burst 5 packets } drop
  tcp dport 80 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
 }
}
"""
    rs = parse_nft(text)
    r4, r6, syn = rs.table("inet", "f").chain("i").rules
    # `ip saddr` only holds for IPv4 packets: the IR says so with a family guard
    assert ir.FieldMatch("meta nfproto", ("ipv4",)) in r4.matches
    assert ir.FieldMatch("meta nfproto", ("ipv6",)) in r6.matches
    out = emit_nft(rs)
    assert "meta nfproto ipv4 update @lim4 { ip saddr limit rate over 5/second" in out
    assert "synproxy mss 1460 wscale 7 timestamp sack-perm" in out
    assert parse_nft(out).tables == rs.tables
    with pytest.raises(Unsupported, match="keyed on no address"):
        parse_nft(text.replace("ip saddr limit", "tcp dport limit", 1))


def test_a_set_with_a_default_timeout_has_the_timeout_flag_as_nft_lists_it():
    from fwc.frontends.nft import parse_nft
    text = """table ip f {
 set seen { type ipv4_addr; flags dynamic; timeout 1m; }
 chain i { type filter hook input priority 0; add @seen { ip saddr }; }
}"""
    listing = text.replace("flags dynamic;", "flags dynamic,timeout;")
    (s,) = parse_nft(text).table("ip", "f").sets
    assert "timeout" in s.flags
    assert parse_nft(text).tables == parse_nft(listing).tables


def test_socket_match_forms():
    def nft(opts, target="-j ACCEPT"):
        text = f"*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n-A INPUT -p tcp -m socket {opts} {target}\nCOMMIT\n"
        return emit_nft(parse_iptables_save(text, "s.rules"))
    # --nowildcard alone: "a socket is found" in the rule itself
    assert "ip protocol tcp socket transparent 0-1 accept" in nft("--nowildcard")
    # otherwise a chain of its own: full wildcard sockets return, the mark is restored there
    out = nft("--restore-skmark")
    assert "ip protocol tcp jump fwc_socket_1" in out
    body = out[out.index("chain fwc_socket_1"):]
    assert body.index("socket wildcard 1 return") < \
        body.index("socket transparent 1 meta mark set socket mark") < \
        body.index("socket transparent 0-1 accept")
    assert "socket wildcard" not in nft("--transparent --nowildcard --restore-skmark")
    # in a chain of its own, RETURN and -g would act on that chain: refused, located
    for target in ("-j RETURN", "-g X"):
        with pytest.raises(ErrorGroup) as ei:
            nft("", target)
        assert ei.value.errors[0].loc.line == 4
    from fwc.backends.simulate import simulate
    from fwc.packet import cases_from_json
    with pytest.raises(Unsupported, match="socket"):
        simulate(parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m socket -j DROP\n"
                                     "COMMIT\n"), cases_from_json([{"name": "c", "probe": {
                                         "dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1",
                                         "dport": 22, "flags": "S"}}]))


def test_socket_rule_has_one_counter_with_counters():
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -s 10.0.0.0/8 -p tcp -m socket --nowildcard -j ACCEPT\nCOMMIT\n")
    out = emit_nft(parse_iptables_save(text), counters=True)
    (line,) = [x for x in out.splitlines() if "socket" in x]
    assert line.count("counter") == 1, line


def test_tee_is_refused_in_an_inet_table():
    rs = parse_iptables_save("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp --dport 514 "
                             "-j TEE --gateway 192.0.2.9\nCOMMIT\n", "tee.rules", "ip")
    assert "dup to 192.0.2.9" in emit_nft(rs)
    with pytest.raises(ErrorGroup) as ei:
        emit_nft(rs, inet=True)
    assert "dup (TEE) in an inet table" in ei.value.errors[0].message


@pytest.mark.parametrize("comment", ["c" * 200, "é" * 100, "x" * 128, "é" * 64])
def test_a_comment_nft_cannot_hold_is_cut_with_a_warning(comment):
    """iptables comments hold 255 bytes, nft's 128 (longer: nft refuses the whole file)."""
    from fwc.frontends.nft import parse_nft
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            f'-A INPUT -p tcp -m comment --comment "{comment}" -j ACCEPT\nCOMMIT\n')
    out, warnings = emit_nft_with_warnings(parse_iptables_save(text, "c.rules", "ip"))
    back = [r for t in parse_nft(out, "o.nft").tables for c in t.chains for r in c.rules]
    size = len(comment.encode())
    assert len(back[0].comment.encode()) <= 128
    if size <= 128:
        assert (back[0].comment, warnings) == (comment, [])
    else:
        assert back[0].comment.endswith("...") and comment.startswith(back[0].comment[:-3])
        assert [(w.loc.line, f"it has {size}" in w.message) for w in warnings] == [(3, True)]


def test_lcs_merge_finds_a_longest_common_subsequence():
    """Against the quadratic dynamic programme, on random short lists (any hashable items)."""
    import random
    from fwc.backends.nft_layout import lcs_merge
    rnd = random.Random(7)
    for _ in range(300):
        a = [rnd.randrange(6) for _ in range(rnd.randrange(12))]
        b = [rnd.randrange(6) for _ in range(rnd.randrange(12))]
        n, m = len(a), len(b)
        dp = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            for j in range(m - 1, -1, -1):
                dp[i][j] = dp[i + 1][j + 1] + 1 if a[i] == b[j] else max(dp[i + 1][j], dp[i][j + 1])
        out = lcs_merge(a, b)
        assert [x for x, _ in out if x is not None] == a and [y for _, y in out if y is not None] == b
        assert all(x == y for x, y in out if x is not None and y is not None)
        assert sum(1 for x, y in out if x is not None and y is not None) == dp[0][0]
