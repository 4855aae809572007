"""The nft backend's output in a real kernel: it loads, reloads next to foreign tables, and
nft/the kernel read it back with the intended meaning (bytecode for negated bit tests)."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys

import pytest

from fwc import ir
from fwc.backends.nft import emit_nft
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.nft import parse_nft
from fwc.nftcheck import check_nft
from fwc.testing.kernel import kernel_or_skip

pytestmark = pytest.mark.kernel

N = ipaddress.ip_network
A = ipaddress.ip_address
R = ir.Range


def sh(ns, *argv, input=None, check=True):
    p = subprocess.run(["ip", "netns", "exec", ns, *argv], input=input, capture_output=True,
                       text=True)
    if check and p.returncode:
        raise AssertionError(f"{argv}: {p.stderr}")
    return p


@pytest.fixture
def ns():
    kernel_or_skip()
    name = f"nftb{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sh(name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name])


def load(ns, text):
    p = sh(ns, "nft", "-f", "-", input=text, check=False)
    assert p.returncode == 0, p.stderr + "\n" + text
    return sh(ns, "nft", "list", "ruleset").stdout


def fs(*x):
    return frozenset(x)


def every_construct() -> ir.Ruleset:
    """One rule per supported construct (filter, raw, mangle and nat tables, ip and ip6)."""
    tcp = ir.Proto(fs(6))
    dport = lambda *p: ir.Port("tcp", "dport", tuple(R(a, a) for a in p))
    M = [
        (tcp, dport(22)), (ir.Proto(fs(6, 17), negate=True),),
        (ir.Address("saddr", (N("192.0.2.0/24"), ir.AddrRange(A("198.51.100.1"), A("198.51.100.9"))),
                    negate=True),),
        (ir.Interface("iifname", "eth+"),), (ir.Interface("oifname", "veth0", negate=True),),
        (ir.Port("udp", "sport", (R(1024, 65535),)),), (ir.Port("tcp", "dport", (R(1, 1), R(5, 7)),
                                                                negate=True),),
        (ir.TcpFlags(fs("FIN", "SYN", "RST", "ACK"), fs("SYN")),),
        (ir.TcpOption(2, negate=True),),
        (ir.Icmp("ip", 8),), (ir.Icmp("ip", 3, R(1, 3), negate=True),),
        (ir.CtState(fs("ESTABLISHED", "RELATED"), negate=True),),
        (ir.CtState(fs("SNAT", "DNAT")),), (ir.CtStatus(fs("DNAT"), negate=True),),
        (ir.CtDirection("REPLY"),), (ir.CtProto(6), ir.CtPort("original", "dport", (R(443, 444),))),
        (ir.CtAddress("original", "saddr", (N("192.0.2.1/32"),)),), (ir.CtExpire(R(10000, 20999)),),
        (ir.Mark("meta", 1, 0xFF, negate=True),), (ir.Mark("ct", 7),),
        (ir.AddrType("daddr", fs("LOCAL", "BROADCAST"), "in"),),
        (ir.SkUid(R(1000, 2000)),), (ir.PktType("broadcast"),), (ir.Length(R(100, 200)),),
        (ir.Ttl("ip", "lt", 5),), (ir.Dscp(0x2E),), (ir.Tos(0x10, 0x3F),),
        (ir.Limit(3, "minute", 5),), (ir.Limit(3, "second", 9, negate=True),),
        (ir.SetLookup("allow", ("src",)),), (ir.IpsecPolicy("in", True),),
        (ir.Statistic("random", probability=0.3),), (ir.Statistic("nth", every=3, packet=1),),
        (ir.Fragment(),), (ir.Mac("00:11:22:33:44:55"),),
    ]
    rules = [ir.Rule(m, verdict=ir.Accept()) for m in M]
    rules += [
        ir.Rule(statements=(ir.Log("in: ", 6, fs("tcp-sequence", "ip-options")),)),
        ir.Rule(statements=(ir.NfLog(2, "nf", 128, 4),)),
        ir.Rule(statements=(ir.SetMark("meta", 1, 0xFF), ir.SetMark("ct", 2),
                            ir.CopyMark("ct"), ir.Trace(), ir.Counter(5, 500))),
        ir.Rule((tcp,), verdict=ir.Reject("tcp-reset")),
        ir.Rule(verdict=ir.Reject("icmp-host-prohibited")),
        ir.Rule((ir.Port("tcp", "port", (R(53, 53),)),), verdict=ir.Drop(), comment='dns "both"'),
        ir.Rule(verdict=ir.Jump("fwd-ext")), ir.Rule(verdict=ir.Goto("fwd-ext")),
    ]
    filt = ir.Table("ip", "filter", (
        ir.Chain("INPUT", tuple(rules), ir.iptables_base_hook("filter", "INPUT", "drop")),
        ir.Chain("FORWARD", (ir.Rule((tcp, dport(21)), (ir.CtHelperSet("ftp"),)),),
                 ir.iptables_base_hook("filter", "FORWARD")),
        ir.Chain("fwd-ext", (ir.Rule(verdict=ir.Return()),))),
        sets=(ir.ExternalSet("allow", "ip", ("addr",), True),))
    raw = ir.Table("ip", "raw", (ir.Chain("PREROUTING", (
        ir.Rule((ir.Proto(fs(17)),), (ir.Notrack(),)), ir.Rule(statements=(ir.CtZoneSet(3),))),
        ir.iptables_base_hook("raw", "PREROUTING")),))
    mangle = ir.Table("ip", "mangle", (ir.Chain("FORWARD", (
        ir.Rule((tcp,), (ir.TcpMss(),)), ir.Rule((tcp,), (ir.TcpMss(1400),)),
        ir.Rule(statements=(ir.SetTtl("ip", "set", 64), ir.SetDscp(0x2E)))),
        ir.iptables_base_hook("mangle", "FORWARD")),))
    t = ir.NatTarget
    nat = ir.Table("ip", "nat", (
        ir.Chain("PREROUTING", (
            ir.Rule((tcp, dport(80)), verdict=ir.Dnat((t(N("192.0.2.5/32"), R(8080, 8080)),))),
            ir.Rule((tcp, dport(81)), verdict=ir.Dnat((t(None, R(8081, 8081)),))),
            ir.Rule((tcp, dport(82)), verdict=ir.Redirect(R(8082, 8082))),
            ir.Rule(verdict=ir.Netmap("daddr", N("198.51.100.0/24")))),
            ir.iptables_base_hook("nat", "PREROUTING")),
        ir.Chain("POSTROUTING", (
            ir.Rule((tcp,), verdict=ir.Snat((t(ir.AddrRange(A("192.0.2.1"), A("192.0.2.4")),
                                              R(1000, 2000)),), fs("persistent"))),
            ir.Rule((tcp,), verdict=ir.Masquerade(R(1024, 65535), fs("random"))),
            ir.Rule(verdict=ir.Netmap("saddr", N("203.0.113.0/24")))),
            ir.iptables_base_hook("nat", "POSTROUTING"))))
    v6 = ir.Table("ip6", "filter", (ir.Chain("INPUT", (
        ir.Rule((ir.Icmp("ip6", 135),), verdict=ir.Accept()),
        ir.Rule((ir.Length(R(100, 200)),), verdict=ir.Accept()),
        ir.Rule((ir.Ttl("ip6", "gt", 5),), verdict=ir.Accept()),
        ir.Rule((ir.Address("daddr", (N("2001:db8::/32"),)),), verdict=ir.Reject("icmp6-adm-prohibited")),
    ), ir.iptables_base_hook("filter", "INPUT")),))
    return ir.Ruleset((filt, raw, mangle, nat, v6))


def test_every_construct_loads_and_reads_back(ns):
    text = emit_nft(every_construct())
    listing = load(ns, text)
    for printed in [
        "ct state ! established,related accept",  # bit test, not value compare
        "ct status snat,dnat accept", "ct status ! dnat accept",
        "ip saddr != { 192.0.2.0/24, 198.51.100.1-198.51.100.9 } accept",
        'iifname "eth*" accept', "tcp dport != { 1, 5-7 } accept",
        "fib daddr . iif type { local, broadcast } accept",
        "limit rate over 3/second burst 9 packets accept",
        "ip saddr @allow accept", "meta random & 2147483647 < 644245094 accept",
        "tcp sport . tcp dport { 53 . 0-65535, 0-52 . 53, 54-65535 . 53 } drop",
        "jump fwd-ext", "goto fwd-ext",
        "snat ip prefix to ip saddr map { 0.0.0.0/0 : 203.0.113.0/24 }",
        "dnat to :8081", "redirect to :8082", "masquerade to :1024-65535 random",
        "notrack", "ct zone set 3", "tcp option maxseg size set rt mtu",
        'ct helper set "ftp-tcp"', "counter packets 5 bytes 500",
        "reject with icmpv6 admin-prohibited", "ip6 length 60-160 accept",
    ]:
        assert printed in listing, printed
    # reloading replaces our tables and keeps a foreign one
    sh(ns, "nft", "add", "table", "ip", "docker")
    listing = load(ns, text)
    assert "table ip docker" in listing
    assert listing.count("table ip filter {") == 1


def netlink(ns) -> str:
    return sh(ns, "nft", "--debug=netlink", "list", "ruleset").stdout


def rule_bytecode(ns, text) -> str:
    load(ns, text)
    return netlink(ns)


def one_rule(*matches, family="ip"):
    hook = ir.iptables_base_hook("filter", "INPUT")
    return ir.Ruleset((ir.Table(family, "filter", (ir.Chain("INPUT", (
        ir.Rule(tuple(matches), verdict=ir.Accept()),), hook),)),))


def test_negated_state_list_is_none_of_the_bits(ns):
    code = rule_bytecode(ns, emit_nft(one_rule(ir.CtState(fs("ESTABLISHED", "RELATED"), negate=True))))
    # established = 2, related = 4: (state & 6) == 0
    assert re.search(r"ct load state => reg 1 \]\s+\[ bitwise reg 1 = \( reg 1 & 0x00000006 \) "
                     r"\^ 0x00000000 \]\s+\[ cmp eq reg 1 0x00000000 \]", code), code


def test_negated_status_is_a_bit_test(ns):
    code = rule_bytecode(ns, emit_nft(one_rule(ir.CtStatus(fs("SNAT"), negate=True))))
    assert re.search(r"ct load status => reg 1 \]\s+\[ bitwise reg 1 = \( reg 1 & 0x00000010 \) "
                     r"\^ 0x00000000 \]\s+\[ cmp eq reg 1 0x00000000 \]", code), code


def test_ct_expiration_keeps_the_truncated_second(ns):
    code = rule_bytecode(ns, emit_nft(one_rule(ir.CtExpire(R(10000, 20999)))))
    # 10000 ms and 20999 ms, big endian
    assert "cmp gte reg 1 0x10270000" in code and "cmp lte reg 1 0x07520000" in code


DELIVERED = """
import socket
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 9999))
rx.settimeout(0.3)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1, 7):
    try:
        tx.sendto(str(i).encode(), ("127.0.0.1", 9999))
    except OSError:
        pass  # EPERM: dropped in OUTPUT
got = []
try:
    while True:
        got.append(rx.recv(16).decode())
except OSError:
    pass
print(" ".join(got))
"""


def replied_seqs(ns) -> set[int]:
    """Which of six numbered UDP datagrams to 127.0.0.1:9999 arrive."""
    p = sh(ns, sys.executable, "-c", DELIVERED)
    return {int(x) for x in p.stdout.split()}


@pytest.mark.parametrize("packet", [0, 1, 2])
def test_nth_matches_the_same_packets_as_iptables(ns, packet):
    """numgen inc must drop exactly the datagrams xt_statistic --every 3 drops."""
    rules = f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p udp --dport 9999 -m statistic --mode nth --every 3 --packet {packet} -j DROP
COMMIT
"""
    sh(ns, "iptables-restore", input=rules)
    by_iptables = replied_seqs(ns)
    sh(ns, "iptables", "-F")
    sh(ns, "nft", "flush", "ruleset")
    load(ns, emit_nft(parse_iptables_save(rules, "nth.rules")))
    by_nft = replied_seqs(ns)
    assert len(by_iptables) == 4 and by_nft == by_iptables


def test_check_nft_reports_errors_without_loading():
    kernel_or_skip()
    good = emit_nft(one_rule(ir.Mark("meta", 1)))
    assert check_nft(good) == []
    errors = check_nft(good.replace("meta mark 0x1", "meta mark frobnicate"))
    assert errors and any("frobnicate" in e or "Error" in e for e in errors)


from tests.corpus import REAL_WORLD, corpus_id, real_world_files, require  # noqa: E402


@pytest.mark.parametrize("path", real_world_files(), ids=corpus_id)
def test_real_world_dumps_translate_and_pass_nft_check(path):
    """Every real-world dump becomes nft text the kernel accepts; dropped rules are warned."""
    kernel_or_skip()
    require(REAL_WORLD)
    rs = parse_iptables_save(path.read_text(errors="replace"), str(path))
    from fwc.backends.nft import emit_nft_with_warnings
    text, warnings = emit_nft_with_warnings(rs, drop_unsupported=True)
    assert check_nft(text) == []
    assert text.count("# fwc: dropped unsupported rule:") == len(warnings)
    # and merged into one inet table per name, the text is still valid
    has_both = {t.family for t in rs.tables} >= {"ip", "ip6"}
    if has_both:
        merged, _ = emit_nft_with_warnings(rs, drop_unsupported=True, inet=True)
        assert check_nft(merged) == []


@pytest.mark.parametrize("table", [None, "fw"])
def test_fedora_v4_and_v6_merge_into_inet(ns, table):
    require(REAL_WORLD)
    dumps = REAL_WORLD / "iptables-upstream" / "ipt-save" / "dumps"
    v4 = parse_iptables_save((dumps / "fedora27-iptables").read_text(), "fedora27-iptables")
    v6 = parse_iptables_save((dumps / "fedora27-ip6tables").read_text(), "fedora27-ip6tables")
    from fwc.backends.nft import emit_nft_with_warnings
    text, _ = emit_nft_with_warnings(ir.Ruleset(v4.tables + v6.tables), inet=True, table=table,
                                     drop_unsupported=True)
    listing = load(ns, text)
    assert "table ip " not in listing and "table ip6 " not in listing
    assert "meta nfproto ipv4" in listing and "meta nfproto ipv6" in listing
    if table:
        assert listing.count("table inet ") == 1 and "chain mangle_PREROUTING" in listing


# the real-world dumps' meaning in the kernel: tests/kernel/test_corpus_kernel.py


def test_nft_native_nodes_and_tcp_reset_split_load(ns):
    s = ir.NamedSet("blocked", ("ipv4_addr",), frozenset({"interval"}),
                    ((N("192.0.2.0/24"),), (N("198.51.100.7/32"),)))
    rules = (
        ir.Rule((ir.FieldMatch("meta iifgroup", (3, R(5, 7)), negate=True),), verdict=ir.Accept()),
        ir.Rule((ir.FieldMatch("meta cpu", (1,), mask=0x3),), verdict=ir.Accept()),
        ir.Rule((ir.SetMatch(("ip saddr", "tcp dport"), elements=((N("192.0.2.0/24"), 22),),
                             negate=True),), verdict=ir.Accept()),
        ir.Rule((ir.SetMatch(("ip saddr",), "blocked"),), verdict=ir.Drop()),
        ir.Rule((ir.CtCount(10, over=True),), verdict=ir.Drop()),
        ir.Rule(verdict=ir.VerdictMap(("tcp dport",), elements=(((22,), ir.Accept()),
                                                               ((23,), ir.Drop())))),
        ir.Rule((ir.Interface("iifname", "eth0"),), verdict=ir.Reject("tcp-reset")),
    )
    rs = ir.Ruleset((ir.Table("ip", "filter", (ir.Chain("INPUT", rules, ir.iptables_base_hook(
        "filter", "INPUT")),), sets=(s,)),))
    listing = load(ns, emit_nft(rs))
    for printed in ["iifgroup != { 3, 5-7 } accept", "ip saddr @blocked drop",
                    "ct count over 10 drop", "tcp dport vmap { 22 : accept, 23 : drop }",
                    'iifname "eth0" drop', "elements = { 192.0.2.0/24, 198.51.100.7 }"]:
        assert printed in listing, printed
    # nft hides the tcp dependency when printing; the bytecode must test it before the reset
    assert 'iifname "eth0" reject with tcp reset' in listing
    code = netlink(ns)
    assert re.search(r"meta load l4proto => reg 1 \]\s+\[ cmp eq reg 1 0x00000006 \]\s+"
                     r"\[ meta load iifname", code), code


def test_a_chain_of_its_own_repeats_the_protocol_for_nat_ports(ns):
    """The rest of a rule moved into fwc_label_N / fwc_owner_N keeps its protocol test: nft
    only maps a NAT port after one (found by the differential property)."""
    from fwc.frontends.iptables import parse_iptables_save
    text = emit_nft(parse_iptables_save(
        "*nat\n-A INPUT -p tcp -m connlabel ! --label 0 -j SNAT --to-source 192.0.2.1:8080\n"
        "-A OUTPUT -p udp -m owner ! --uid-owner 0 -j DNAT --to-destination 192.0.2.9:53\n"
        "COMMIT\n", "nat.rules"))
    assert "ip protocol tcp snat to 192.0.2.1:8080" in text
    assert "ip protocol udp dnat to 192.0.2.9:53" in text
    load(ns, text)


def test_time_values_written_load():
    from tests.test_nft_frontend_roundtrip import TIME_VALUES
    from fwc.frontends.nft import parse_nft
    out = emit_nft(parse_nft(TIME_VALUES, "t.nft"))
    assert check_nft(out) == []


def test_nft_strings_are_read_as_nft_reads_them(ns):
    """nft 1.0.6's scanner reads `"[^"]*"`: a backslash is itself, `"a\\"` is a whole string and
    a string may span lines.  fwc's nft output of such an input lists as the input does."""
    text = ('table ip t {\n chain c {\n'
            '  tcp dport 1 accept comment "a\\\\b\\ty"\n'
            '  tcp dport 2 accept comment "ends in \\"\n'
            '  tcp dport 3 log prefix "x\\\\y " accept\n'
            ' }\n}\n')
    want = load(ns, text)
    sh(ns, "nft", "flush", "ruleset")
    got = load(ns, emit_nft(parse_nft(text, "s.nft")))
    assert got == want
    assert '"a\\\\b\\ty"' in want and '"ends in \\"' in want


# Each rule, read by fwc and written back, lists in the kernel as nft's own reading of it lists
# (nft lists the kernel's bytecode). Each once differed: numbers with a leading 0 are octal to
# nft (fwc read `tcp dport 022` as 22, nft 18; `08` is no octal number, and only a port reads
# it, as decimal); an interface wildcard in a set or map was written as a literal `"veth+"`.
SAME_LISTING = [
    "tcp dport 022 accept", "tcp dport 010-0x20 accept", "tcp dport { 010, 011 } accept",
    "tcp dport 08 accept", "tcp dport 0778 accept", "ip ttl 010 drop", "meta mark 0777 accept",
    "ct mark 017 accept", "limit rate 010/second burst 010 packets accept", "ip dscp 010 accept",
    "ct zone 010 accept", "log group 010 accept", "icmp type 010 accept", "quota 010 bytes accept",
    "tcp option maxseg size 010 accept", "meta mark set 010", "ct count over 010 drop",
    "limit rate 10/week accept", "limit rate over 2/week burst 3 packets drop",
    "ct status { dnat } accept", "ct status == { dnat } accept", "ct status != { dnat } accept",
    "tcp flags { syn | ack } accept", "tcp flags == { syn } accept", "ct label { 1 } accept",
    'oifname { "eth0", "veth*", "br-*" } accept', 'iifname != { "veth*", "lo" } drop',
    'iifname vmap { "lo" : accept, "veth*" : drop }', 'iifname { "eth\\*", "wl*" } accept',
]


@pytest.mark.parametrize("rule", SAME_LISTING)
def test_a_rule_lists_as_nft_reads_it(ns, rule):
    text = (f"table inet t {{\n chain c {{\n  type filter hook forward priority 0;\n  {rule}\n"
            " }\n}\n")
    want = load(ns, text)
    sh(ns, "nft", "flush", "ruleset")
    assert load(ns, emit_nft(parse_nft(text, "r.nft"))) == want


@pytest.mark.parametrize("rule,family,listed", [
    ("meta length > 1000 drop", "inet", ["ip length 1001-65535 drop", "ip6 length 961-65535 drop"]),
    ("meta length 65500-70000 drop", "inet", ["ip length 65500-65535 drop",
                                              "ip6 length 65460-65535 drop"]),
    ("meta length != 65536-80000 drop", "ip", ["drop"]),  # every IPv4 packet
    ("meta length 1-65535 accept", "ip6", ["ip6 length 0-65495 accept"])])
def test_a_length_beyond_16_bits_is_cut_to_what_the_family_can_have(ns, rule, family, listed):
    """`meta length` is 32 bits; ip/ip6 length 16 (fwc wrote `ip length 1001-4294967295`,
    which nft refuses to load). `ip6 length` is the payload: 40 bytes less."""
    text = (f"table {family} t {{\n chain c {{\n  type filter hook input priority 0;\n  {rule}\n"
            " }\n}\n")
    load(ns, text)
    out = emit_nft(parse_nft(text, "l.nft"))
    sh(ns, "nft", "flush", "ruleset")
    got = [x.strip() for x in load(ns, out).splitlines()]
    assert got[got.index("type filter hook input priority filter; policy accept;") + 1:-2] == listed


def test_check_nft_survives_libnftables_aborting():
    """libnftables 1.0.6 aborts the process on `ip dscp 1/6` (an assertion in
    netlink_gen_raw_data; a vector of nft's own tests): the check reports it instead."""
    text = ("add table ip t\nadd chain ip t c { type filter hook input priority 0; }\n"
            "add rule ip t c ip dscp 1/6\n")
    assert check_nft(text) == ["libnftables failed checking the output (SIGABRT): nft itself "
                               "cannot read it"]
    assert check_nft(text.replace("1/6", "1")) == []
