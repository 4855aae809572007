"""bridge and netdev tables: nft front end (text and JSON), nft backend round trip, and the
located refusals of what the IR or the other backends do not model there."""

from __future__ import annotations

import ipaddress
import json

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.cli import main
from fwc.errors import ErrorGroup, FwcSyntaxError, Unsupported
from fwc.frontends.nft import parse_nft
from fwc.frontends.nft_json import parse_nft_json
from fwc.passes import optimize

L2 = """table bridge br {
 chain fw {
  type filter hook forward priority filter; policy drop;
  ct state established,related accept
  meta protocol ip ip saddr 192.0.2.0/24 udp dport { 53, 67-68 } counter accept
  ether type vlan vlan id 10 jump vlans
  ether saddr 00:11:22:33:44:55 drop
  ip6 daddr 2001:db8::1 icmpv6 type echo-request accept
  meta ibrname "br0" meta obrname "br1" accept
  meta mark 0x10 meta mark set 0x20 return
 }
 chain pre {
  type filter hook prerouting priority dstnat + 5;
  icmp type echo-request limit rate 5/second burst 5 packets accept
  ip protocol tcp ip ttl < 5 drop
 }
 chain vlans {
  vlan id 10 vlan pcp 3 accept
  meta length > 1000 drop
 }
}
table netdev nd {
 chain in {
  type filter hook ingress devices = { "veth1", veth0 } priority filter - 5; policy accept;
  meta protocol ip6 ip6 saddr fe80::/10 accept
  iifname "veth0" udp dport 9 counter drop
  ether type arp accept
 }
 chain out {
  type filter hook egress device "veth0" priority 10;
  tcp dport 22 tcp flags syn / syn,ack drop
 }
 chain helper {
  ip daddr 198.51.100.7 drop
 }
}
"""


def parse(text, name="l2.nft"):
    return parse_nft(text, name)


def rules(rs, fam, table, chain):
    return rs.table(fam, table).chain(chain).rules


def test_bridge_and_netdev_tables_parse_with_their_hooks():
    rs = parse(L2)
    br, nd = rs.table("bridge", "br"), rs.table("netdev", "nd")
    # bridge priority names are the bridge family's: filter -200, dstnat -300
    assert br.chain("fw").base == ir.BaseHook("filter", "forward", -200, "drop")
    assert br.chain("pre").base == ir.BaseHook("filter", "prerouting", -295, "accept")
    assert nd.chain("in").base == ir.BaseHook("filter", "ingress", -5, "accept",
                                              ("veth0", "veth1"))
    assert nd.chain("out").base == ir.BaseHook("filter", "egress", 10, "accept", ("veth0",))
    assert nd.chain("helper").base is None


def test_what_the_l2_rules_mean_in_the_ir():
    rs = parse(L2)
    fwd = rules(rs, "bridge", "br", "fw")
    # `meta protocol ip` is the test nft puts in front of `ip saddr` anyway (one rule)
    assert fwd[1].matches[0] == ir.Address("saddr", (ipaddress.ip_network("192.0.2.0/24"),))
    assert fwd[3].matches == (ir.Mac("00:11:22:33:44:55"),)
    assert fwd[5].matches == (ir.FieldMatch("meta ibrname", ("br0",)),
                              ir.FieldMatch("meta obrname", ("br1",)))
    pre = rules(rs, "bridge", "br", "pre")
    assert pre[0].matches[0] == ir.Icmp("ip", 8)
    # fields whose IR node assumes an IP hook stay nft text in these families
    assert pre[1].matches == (ir.FieldMatch("ip protocol", (6,)),
                              ir.FieldMatch("ip ttl", (5,), "lt"))
    assert rules(rs, "bridge", "br", "vlans")[1].matches == (ir.FieldMatch("meta length", (1000,), "gt"),)


def test_link_layer_guards_are_dropped_only_where_nft_adds_the_same_test():
    one = lambda fam, body: parse(f"table {fam} t {{\n chain c {{\n  {body}\n }}\n}}\n").tables[0].chains[0].rules[0].matches
    addr = (ir.Address("saddr", (ipaddress.ip_network("10.0.0.1/32"),)),)
    for fam in ("bridge", "netdev"):
        assert one(fam, "meta protocol ip ip saddr 10.0.0.1") == addr
        # `ether type ip` is not what nft adds for `ip saddr`: it stays (VLAN frames differ)
        assert one(fam, "ether type ip ip saddr 10.0.0.1")[0] == ir.FieldMatch("ether type", ("ip",))
    # icmp: nft adds `ether type ip` in bridge tables, `meta protocol ip` in netdev ones
    assert one("bridge", "ether type ip icmp type echo-request") == (ir.Icmp("ip", 8),)
    assert one("bridge", "meta protocol ip icmp type echo-request")[0] == \
        ir.FieldMatch("meta protocol", ("ip",))
    assert one("netdev", "meta protocol ip icmp type echo-request") == (ir.Icmp("ip", 8),)
    # `vlan id` gets `ether type vlan` (8021q is its other name); `vlan cfi` is `vlan dei`
    vlan = (ir.FieldMatch("vlan id", (5,)), ir.FieldMatch("vlan dei", (1,)))
    for fam in ("bridge", "netdev"):
        assert one(fam, "ether type vlan vlan id 5 vlan cfi 1") == vlan
        assert one(fam, "ether type 8021q vlan id 5 vlan dei 1") == vlan
        assert one(fam, "ether type 8021ad vlan id 5 vlan dei 1")[0] == \
            ir.FieldMatch("ether type", ("8021ad",))


def test_l2_rulesets_round_trip_through_the_nft_backend():
    rs = parse(L2)
    text = emit_nft(rs)
    assert 'devices = { "veth0", "veth1" } priority filter - 5; policy accept;' in text
    assert 'hook egress device "veth0" priority filter + 10;' in text
    assert "hook forward priority filter; policy drop;" in text
    assert "hook prerouting priority dstnat + 5;" in text
    assert "meta nfproto" not in text
    assert parse(text, "emitted.nft") == rs


def test_json_front_end_reads_l2_chains_and_their_devices():
    doc = {"nftables": [
        {"table": {"family": "netdev", "name": "nd"}},
        {"chain": {"family": "netdev", "table": "nd", "name": "in", "type": "filter",
                   "hook": "ingress", "prio": 0, "dev": ["veth1", "veth0"], "policy": "drop"}},
        {"chain": {"family": "netdev", "table": "nd", "name": "out", "type": "filter",
                   "hook": "egress", "prio": 0, "dev": "veth0"}},
        {"rule": {"family": "netdev", "table": "nd", "chain": "in", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": 9}}, {"drop": None}]}},
        {"table": {"family": "bridge", "name": "br"}},
        {"chain": {"family": "bridge", "table": "br", "name": "f", "type": "filter",
                   "hook": "forward", "prio": -200, "policy": "accept"}},
    ]}
    rs = parse_nft_json(json.dumps(doc), "l2.json")
    text = parse("table netdev nd {\n chain in {\n  type filter hook ingress devices = { veth0, veth1 }"
                 " priority 0; policy drop;\n  udp dport 9 drop\n }\n chain out {\n  type filter hook "
                 "egress device veth0 priority 0;\n }\n}\ntable bridge br {\n chain f {\n  type filter "
                 "hook forward priority filter;\n }\n}\n")
    assert rs == text
    # nft 1.0.6 lists netdev base chains in JSON without their devices: refused, located
    del doc["nftables"][1]["chain"]["dev"]
    with pytest.raises(Unsupported, match="without 'dev'") as e:
        parse_nft_json(json.dumps(doc, indent=1), "l2.json")
    assert e.value.loc.file == "l2.json" and e.value.loc.line > 1


@pytest.mark.parametrize("spec,message", [
    ("table bridge t {\n chain c {\n  type filter hook ingress priority 0;\n }\n}\n", "no hook 'ingress'"),
    ("table netdev t {\n chain c {\n  type filter hook forward device d priority 0;\n }\n}\n", "no hook 'forward'"),
    ("table netdev t {\n chain c {\n  type filter hook ingress priority 0;\n }\n}\n", "needs a device"),
    ("table netdev t {\n chain c {\n  type filter hook ingress devices = { } priority 0;\n }\n}\n", "device list"),
    ("table ip t {\n chain c {\n  type filter hook input device eth0 priority 0;\n }\n}\n", "cannot be bound to a device"),
    ("table bridge t {\n chain c {\n  type filter hook input device eth0 priority 0;\n }\n}\n", "cannot be bound to a device"),
    ("table bridge t {\n chain c {\n  type nat hook prerouting priority 0;\n }\n}\n", "filter only"),
    ("table netdev t {\n chain c {\n  type route hook ingress device d priority 0;\n }\n}\n", "filter only"),
    ("table bridge t {\n chain c {\n  type filter hook input priority raw;\n }\n}\n", "priority 'raw'"),
    ("table bridge t {\n chain c {\n  type filter hook input priority dstnat;\n }\n}\n", "only on hook prerouting"),
    ("table netdev t {\n chain c {\n  type filter hook ingress device d priority mangle;\n }\n}\n", "priority 'mangle'"),
    ("table netdev t {\n chain c {\n  type filter hook ingress device d priority 0;\n  device e\n }\n}\n", "hook spec"),
    ("table bridge t {\n chain c {\n  meta nfproto ipv4 accept\n }\n}\n", "meta nfproto"),
    ("table netdev t {\n chain c {\n  type filter hook ingress device \"a/b\" priority 0;\n }\n}\n", "invalid device name"),
])
def test_bad_l2_chains_are_located_syntax_errors(spec, message, tmp_path, capsys):
    with pytest.raises(FwcSyntaxError, match=message) as e:
        parse(spec, "bad.nft")
    assert e.value.loc.file == "bad.nft" and e.value.loc.line >= 3
    src = tmp_path / "bad.nft"
    src.write_text(spec)
    assert main(["translate", "--from", "nft", str(src)]) == 2
    err = capsys.readouterr().err
    assert f"{src}:{e.value.loc.line}:" in err and "Traceback" not in err


def _one_rule(family: str, hook: str, body: str) -> str:
    """A table of `family` with one filter chain on `hook` holding `body` on line 4, column 3."""
    return (f"table {family} t {{\n chain c {{\n  type filter hook {hook} priority 0;\n"
            f"  {body}\n }}\n}}\n")


@pytest.mark.parametrize("body,what", [
    ("reject", "'reject' in a bridge table"),
    ("dnat to 10.0.0.2", "'dnat' in a bridge table"),
    ("notrack", "'notrack' in a bridge table"),
    ("ct zone set 3", "CtZoneSet in a bridge table"),
    ("queue num 3", "'queue' in a bridge table"),
])
def test_ip_only_statements_in_l2_tables_are_unsupported_and_located(body, what):
    with pytest.raises(Unsupported) as e:
        parse(_one_rule("bridge", "prerouting", body), "x.nft")
    assert what in e.value.message
    assert (e.value.loc.line, e.value.loc.col) == (4, 3)


def test_inet_ingress_is_still_refused():
    with pytest.raises(Unsupported, match="hook 'ingress' in an inet table"):
        parse("table inet t {\n chain c {\n  type filter hook ingress device d priority 0;\n }\n}\n")


def test_nft_backend_refuses_what_it_cannot_write_in_l2_tables():
    loc = ir.Loc("hand.nft", 7, 3)
    for node, kind in ((ir.Dscp(10), "matches"), (ir.Reject(None), "verdict"),
                       (ir.CtHelperSet("ftp"), "statements"), (ir.Icmp("ip", None), "matches")):
        r = ir.Rule(**{kind: node if kind == "verdict" else (node,)}, loc=loc)
        rs = ir.Ruleset((ir.Table("bridge", "t", (ir.Chain("c", (r,)),)),))
        with pytest.raises(ErrorGroup) as e:
            emit_nft(rs)
        (err,) = e.value.errors
        assert "bridge table" in err.message and err.loc == loc
    bad = ir.Ruleset((ir.Table("netdev", "t", (ir.Chain("c", (), ir.BaseHook(
        "filter", "ingress", 0, "accept", ('we"ird',)), ir.Loc("hand.nft", 2, 3)),)),))
    with pytest.raises(ErrorGroup, match="device name"):
        emit_nft(bad)


def test_iptables_backend_and_simulator_refuse_l2_tables_located(tmp_path, capsys):
    rs = parse(L2, "l2.nft")
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(rs)
    got = {(x.loc.line, x.message.split(":")[0]) for x in e.value.errors}
    assert got == {(1, "table bridge br"), (22, "table netdev nd")}
    with pytest.raises(Unsupported, match="table family 'bridge'") as e2:
        Simulator(rs)
    assert e2.value.loc.line == 1
    src = tmp_path / "l2.nft"
    src.write_text(L2)
    assert main(["translate", "--from", "nft", "--to", "iptables", str(src)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{src}:1:7: error: table bridge br: iptables has no bridge family" in err


def test_optimiser_leaves_l2_tables_as_they_are():
    rs = parse(L2 + "table ip f {\n chain c {\n  type filter hook input priority 0;\n"
               "  tcp dport 22 accept\n  tcp dport 22 accept\n }\n}\n")
    out = optimize(rs)
    assert [t.family for t in out.tables] == ["bridge", "netdev", "ip"]
    assert out.tables[:2] == rs.tables[:2]
    assert len(out.table("ip", "f").chain("c").rules) == 1  # the ip table was optimised


def test_hand_built_base_chains_the_families_cannot_have_are_refused_located():
    loc = ir.Loc("hand.nft", 3, 2)
    chain = lambda base: ir.Chain("c", (), base, loc)
    bad = [("bridge", ir.BaseHook("nat", "prerouting", 0)),
           ("bridge", ir.BaseHook("filter", "ingress", 0)),
           ("netdev", ir.BaseHook("filter", "ingress", 0)),  # no device
           ("bridge", ir.BaseHook("filter", "input", 0, "accept", ("eth0",))),
           ("ip", ir.BaseHook("filter", "input", 0, "accept", ("eth0",))),
           ("inet", ir.BaseHook("filter", "ingress", 0, "accept", ("eth0",)))]
    for fam, base in bad:
        rs = ir.Ruleset((ir.Table(fam, "t", (chain(base),)),))
        with pytest.raises(ErrorGroup) as e:
            emit_nft(rs)
        assert all(x.loc == loc for x in e.value.errors), (fam, base)
    ip_dev = ir.Ruleset((ir.Table("ip", "filter", (chain(
        ir.BaseHook("filter", "input", 0, "accept", ("eth0",))),)),))
    with pytest.raises(ErrorGroup, match="devices eth0") as e:
        emit_iptables(ip_dev)
    with pytest.raises(Unsupported, match="bound to devices eth0") as e2:
        Simulator(ip_dev)
    assert e2.value.loc == loc


def test_external_sets_in_l2_tables_round_trip():
    text = ("table bridge b {\n set s {\n  type ipv4_addr; flags interval;\n }\n chain c {\n"
            "  ip saddr @s drop\n }\n}\n")
    rs = parse(text)
    assert rules(rs, "bridge", "b", "c")[0].matches == (ir.SetLookup("s", ("src",)),)
    assert parse(emit_nft(rs)) == rs


def test_device_lists_from_variables_and_redefinition_checks():
    rs = parse('define devs = { "v1", v0 }\ntable netdev n {\n chain c {\n'
               '  type filter hook ingress devices = $devs priority 0;\n }\n}\n')
    assert rs.table("netdev", "n").chain("c").base.devices == ("v0", "v1")
    with pytest.raises(FwcSyntaxError, match="cannot change"):
        parse("table netdev n {\n chain c {\n  type filter hook ingress device v0 priority 0;\n }\n}\n"
              "add chain netdev n c { type filter hook ingress device v1 priority 0; }\n")


def test_an_explicit_l4proto_test_before_icmp_type_is_kept_in_l2_tables():
    """nft compiles `icmp type X` with a link-layer test (ether type ip in bridge, meta protocol
    ip in netdev) that an explicit `meta l4proto icmp` replaces: the two rules differ."""
    for fam in ("bridge", "netdev"):
        rs = parse(f"table {fam} t {{\n chain c {{\n  meta l4proto icmp icmp type echo-request\n"
                   "  meta l4proto udp udp dport 5\n }\n}\n")
        text = emit_nft(rs)
        assert "meta l4proto icmp icmp type echo-request" in text
        assert "\t\tudp dport 5\n" in text  # the same l4proto test either way
        assert parse(text).tables[0].chains[0].rules[0] == rs.tables[0].chains[0].rules[0]


ARP = """table arp a {
 chain in {
  type filter hook input priority filter + 2; policy drop;
  arp operation { request, reply } arp saddr ip 192.0.2.0/24 accept
  arp daddr ether 00:11:22:33:44:55 iifname "eth0" counter accept
  arp ptype 0x0800 meta mark set 0x1
 }
 chain out {
  type filter hook output priority 0;
  meta protocol arp arp htype 1 accept
 }
}
"""


def test_arp_tables_parse_and_round_trip():
    rs = parse(ARP)
    a = rs.table("arp", "a")
    assert a.chain("in").base == ir.BaseHook("filter", "input", 2, "drop")
    assert a.chain("in").rules[2].matches == (ir.FieldMatch("arp ptype", ("ip",)),)
    text = emit_nft(rs)
    assert "type filter hook input priority filter + 2; policy drop;" in text
    assert parse(text) == rs
    with pytest.raises(ErrorGroup, match="iptables has no arp family"):
        emit_iptables(rs)


@pytest.mark.parametrize("body,message", [
    ("ip saddr 1.2.3.4 accept", "'Address' in an arp table"),
    ("udp dport 53 accept", "'Port' in an arp table"),
    ("ct state new accept", "'CtState' in an arp table"),
    ("ip6 flowlabel 3", "'ip6 flowlabel' in an arp table"),
    ("th dport 5", "'th dport' in an arp table"),
])
def test_ip_headers_in_arp_tables_are_located_syntax_errors(body, message):
    with pytest.raises(FwcSyntaxError) as e:
        parse(_one_rule("arp", "input", body), "a.nft")
    assert message in e.value.message and (e.value.loc.line, e.value.loc.col) == (4, 3)


@pytest.mark.parametrize("spec,message", [
    ("type filter hook forward priority 0;", "no hook 'forward'"),
    ("type filter hook input device eth0 priority 0;", "cannot be bound to a device"),
    ("type nat hook input priority 0;", "filter only"),
    ("type filter hook input priority raw;", "priority 'raw'"),
])
def test_bad_arp_chains_are_located_syntax_errors(spec, message):
    with pytest.raises(FwcSyntaxError, match=message) as e:
        parse(f"table arp a {{\n chain c {{\n  {spec}\n }}\n}}\n", "a.nft")
    assert e.value.loc.line == 3


def test_nft_backend_refuses_ip_matches_in_hand_built_arp_tables():
    r = ir.Rule((ir.Address("daddr", (ipaddress.ip_network("192.0.2.1/32"),)),),
                verdict=ir.Drop(), loc=ir.Loc("hand.nft", 4, 3))
    rs = ir.Ruleset((ir.Table("arp", "a", (ir.Chain("c", (r,)),)),))
    with pytest.raises(ErrorGroup, match="Address in an arp table") as e:
        emit_nft(rs)
    assert e.value.errors[0].loc == r.loc
