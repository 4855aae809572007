"""Long-tail iptables modules: the IR they build states the xt module's meaning."""

import pytest

from fwc import ir
from fwc.errors import ErrorGroup, FwcSyntaxError
from fwc.frontends.iptables import parse_iptables_script


def rule(cmd: str, fam: str = "iptables") -> ir.Rule:
    rs = parse_iptables_script(f"{fam} {cmd}\n")
    return [r for t in rs.tables for c in t.chains for r in c.rules][0]


def unsupported(cmd: str, fam: str = "iptables") -> str:
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"{fam} {cmd}\n")
    assert all(x.exit_code == 1 for x in e.value.errors)
    return e.value.errors[0].message


def test_ah_length_is_in_bytes_and_res_means_zero():
    r = rule("-A INPUT -m ah --ahlen 120 --ahres", "ip6tables")
    assert ir.FieldMatch("ah hdrlength", (28,)) in r.matches
    assert ir.FieldMatch("ah reserved", (0,)) in r.matches


def test_rt_len_impossible_matches_nothing():
    m = rule("-A INPUT -m rt --rt-len 22", "ip6tables").matches[0]
    assert m.negate and m.values == (ir.Range(0, 255),)


def test_quota_is_the_same_number_in_nft_terms():
    assert rule("-A OUTPUT -m quota --quota 111").matches == (ir.Quota(111),)


def test_connbytes_single_number_is_lower_bound():
    m = rule("-A OUTPUT -m connbytes --connbytes 200 --connbytes-dir original "
             "--connbytes-mode packets").matches[0]
    assert (m.expr, m.op, m.values) == ("ct original packets", "ge", (200,))


def test_time_states_xt_time_parameters_in_utc():
    (m,) = rule("-A INPUT -m time --timestart 12:00 --datestop 2021 ! --weekdays Sa,7").matches
    assert m == ir.Time(date_stop=1609459200, daytime_start=43200, weekdays=0b00111110)
    (m,) = rule("-A INPUT -m time --timestart 23:00 --timestop 1:00 --contiguous "
                "--monthdays 1,31").matches
    assert m.contiguous and m.monthdays == (1 << 1) | (1 << 31)
    assert rule("-A INPUT -m time").matches == (ir.Time(),)  # until 2038-01-19 03:14:07


def test_noncontiguous_netmask():
    m = rule("-A INPUT ! -s 10.11.12.13/0.255.0.255").matches[0]
    assert m.expr == "ip saddr" and m.mask == 0x00FF00FF and m.negate
    assert str(m.values[0].network_address) == "0.11.0.13"


@pytest.mark.parametrize("fam, cmd, what", [
    ("ip6tables", "-A INPUT -m ttl --ttl-eq 5", "-m ttl is an iptables match only"),
    ("iptables", "-A INPUT -m hl --hl-eq 5", "-m hl is an ip6tables match only"),
    ("iptables", "-A INPUT -m mh --mh-type 5", "-m mh is an ip6tables match only"),
    ("iptables", "-A INPUT -p icmpv6 -m icmp6 --icmpv6-type 128", "-m icmp6 is an ip6tables"),
    ("ip6tables", "-A INPUT -p icmp -m icmp --icmp-type 8", "-m icmp is an iptables match"),
    ("ip6tables", "-A INPUT -m realm --realm 5", "-m realm is an iptables match only"),
    ("ip6tables", "-t mangle -A PREROUTING -j TTL --ttl-set 5", "TTL is an iptables target"),
    ("iptables", "-t mangle -A PREROUTING -j HL --hl-set 5", "HL is an ip6tables target"),
    ("iptables", "-A INPUT -p udplite --dport 5", "unknown option --dport"),
    ("iptables", "-A INPUT -p udplite -m udplite --dport 5", "unknown match module 'udplite'"),
    ("iptables", "-A INPUT -p tcp -m TCP --dport 5", "unknown match module 'TCP'"),
    ("iptables", "-A INPUT -p icmp -m icmpv6", "unknown match module 'icmpv6'"),
])
def test_modules_of_the_other_family_are_syntax_errors(fam, cmd, what):
    """What the tool of that family cannot load (iptables 1.8.9: "Couldn't load match", a
    target read as a chain that does not exist, no udplite module, case-sensitive names)."""
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"{fam} {cmd} -j ACCEPT\n" if "-j" not in cmd else f"{fam} {cmd}\n")
    assert all(isinstance(x, FwcSyntaxError) for x in e.value.errors)
    assert what in e.value.errors[0].message


def test_ip6tables_loads_icmp6_by_its_other_names():
    for name in ("icmpv6", "ipv6-icmp"):
        rs = parse_iptables_script(f"ip6tables -A INPUT -p icmpv6 -m {name} --icmpv6-type "
                                   "echo-request -j ACCEPT\n")
        assert ir.Icmp("ip6", 128, ir.Range(0, 255)) in rs.tables[0].chain("INPUT").rules[0].matches


def test_tproxy_adds_the_drop_rule():
    rs = parse_iptables_script("iptables -t mangle -A PREROUTING -p tcp -j TPROXY --on-port 1\n")
    rules = rs.tables[0].chain("PREROUTING").rules
    assert isinstance(rules[0].verdict, ir.TProxy) and rules[1].verdict == ir.Drop()
    assert rules[0].matches == rules[1].matches


def test_refusals_are_located_unsupported():
    from fwc.backends.nft import emit_nft
    neg = parse_iptables_script("iptables -A INPUT -p tcp -m tcpmss ! --mss 42 -j RETURN\n")
    with pytest.raises(ErrorGroup, match="tcpmss ! --mss with -j RETURN"):
        emit_nft(neg)  # (the negation takes a chain of its own, where RETURN would act)
    assert "kernel's time zone" in unsupported("-A INPUT -m time --weekdays Sa --kerneltz")
    assert "stateful" in unsupported("-t mangle -A PREROUTING -p tcp -m limit --limit 1/s "
                                     "-j TPROXY --on-port 1")
    assert "a conntrack zone of one direction" in unsupported(
        "-t raw -A PREROUTING -j CT --zone-orig 1")
    # valid iptables (libxt_hashlimit's byte mode), so unsupported, not a syntax error
    assert "byte-based hashlimit (rate 20kb/s)" in unsupported(
        "-A INPUT -m hashlimit --hashlimit-above 20kb/s --hashlimit-name h")
    assert "byte-based hashlimit (--hashlimit-burst 1mb)" in unsupported(
        "-A INPUT -m hashlimit --hashlimit-upto 5/s --hashlimit-burst 1mb --hashlimit-name h")


# --------------------------------------------------------------------------- back to iptables

from fwc.backends.iptables import emit_iptables  # noqa: E402

ROUND_TRIP = [
    ("iptables", "-t mangle -A PREROUTING -p tcp -j TPROXY --on-port 1"),
    ("iptables", "-t mangle -A PREROUTING -p udp --dport 53 -j TPROXY --on-port 5353 "
                 "--on-ip 192.0.2.1 --tproxy-mark 0x1/0xff"),
    ("iptables", "-A OUTPUT -m quota --quota 111"),
    ("iptables", "-A OUTPUT -m quota ! --quota 0"),
    ("iptables", "-A INPUT -m connlimit --connlimit-above 2 -j DROP"),
    ("iptables", "-A INPUT -m connlimit --connlimit-upto 2 --connlimit-mask 24 --connlimit-daddr"),
    ("ip6tables", "-A INPUT -m connlimit ! --connlimit-above 7 --connlimit-mask 64"),
    ("iptables", "-A INPUT -j AUDIT --type drop"),
    ("iptables", "-t mangle -A POSTROUTING -j CLASSIFY --set-class 1:2a"),
    ("iptables", "-t mangle -A PREROUTING -j TEE --gateway 192.0.2.7 --oif eth0"),
    ("ip6tables", "-t mangle -A PREROUTING -j TEE --gateway 2001:db8::1"),
    ("iptables", "-A INPUT -m ah --ahspi 500:600"),
    ("iptables", "-A INPUT -m esp ! --espspi 7"),
    ("iptables", "-A INPUT -m ipcomp --ipcompspi 9"),
    ("iptables", "-A INPUT -m cpu ! --cpu 3"),
    ("iptables", "-A INPUT -p tcp -m tcpmss --mss 500:1460"),
    ("ip6tables", "-A INPUT -m ecn --ecn-ip-ect 3"),
    ("iptables", "-A INPUT -m connlabel ! --label 40"),
    ("iptables", "-A INPUT -m realm --realm 0x10/0xff"),
    ("iptables", "-A FORWARD -m devgroup --src-group 0x2/0xf ! --dst-group 7"),
    ("iptables", "-A OUTPUT -m connbytes ! --connbytes 200 --connbytes-dir original "
                 "--connbytes-mode packets"),
    ("iptables", "-A OUTPUT -m connbytes --connbytes 10:20 --connbytes-dir both "
                 "--connbytes-mode avgpkt"),
]


@pytest.mark.parametrize("tool,cmd", ROUND_TRIP)
def test_tail_nodes_round_trip_through_iptables(tool, cmd):
    from fwc.frontends.iptables import parse_iptables_save
    rs = parse_iptables_script(f"{tool} {cmd}\n")
    fam = "ip6" if tool == "ip6tables" else "ip"
    text = emit_iptables(rs)[fam]
    back = parse_iptables_save(text, family=fam)

    def rules(r):
        return [x for t in r.tables for c in t.chains for x in c.rules]
    assert rules(back) == rules(rs), text


def test_tproxy_without_its_drop_rule_is_refused():
    rs = parse_iptables_script("iptables -t mangle -A PREROUTING -p tcp -j TPROXY --on-port 1\n")
    t = rs.tables[0]
    chain = t.chain("PREROUTING")
    lone = ir.Ruleset((ir.Table(t.family, t.name, (ir.Chain(chain.name, chain.rules[:1],
                                                            chain.base),)),))
    with pytest.raises(ErrorGroup) as e:
        emit_iptables(lone)
    assert "TPROXY" in e.value.errors[0].message


@pytest.mark.parametrize("module", ["helper", "state", "conntrack", "mark", "connmark", "owner",
                                    "addrtype", "iprange", "pkttype", "length", "mac", "set",
                                    "physdev", "tos", "dscp", "ecn", "ttl", "devgroup", "cpu"])
def test_a_module_iptables_refuses_bare_is_a_syntax_error_not_match_all(module):
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"iptables -A FORWARD -m {module} -j DROP\n")
    assert e.value.errors[0].exit_code == 2 and "needs" in e.value.errors[0].message


def test_sctp_chunk_types_exact_forms_and_refusals():
    ms = rule("-A INPUT -p sctp -m sctp --dport 80 --chunk-types all INIT,SACK -j ACCEPT").matches
    assert ir.FieldMatch("sctp chunk init", ("exists",)) in ms
    assert ir.FieldMatch("sctp chunk sack", ("exists",)) in ms
    ms = rule("-A INPUT -p sctp -m sctp ! --chunk-types any ABORT -j ACCEPT").matches
    assert ir.FieldMatch("sctp chunk abort", ("missing",)) in ms
    # the placeholder port keeps non-first fragments out, as xt_sctp does
    assert any(isinstance(m, ir.Port) and m.proto == "sctp" for m in ms)
    assert "first one" in unsupported("-A INPUT -p sctp -m sctp --chunk-types all DATA:B -j DROP")
    assert "other type" in unsupported("-A INPUT -p sctp -m sctp --chunk-types only INIT -j DROP")
    assert "OR" in unsupported("-A INPUT -p sctp -m sctp --chunk-types any INIT,SACK -j DROP")


@pytest.mark.parametrize("spec,what", [
    ("-p tcp -p udp", "multiple -p"), ("-s 10.0.0.1 -s 10.0.0.2", "multiple -s"),
    ("-i eth0 -i eth1", "multiple -i"), ("-p tcp --dport 22 --dport 80", "only be used once"),
    ("-m state --state NEW --state INVALID", "only be used once"),
    ("-p tcp --syn --tcp-flags SYN SYN", "cannot be combined"),
    ("-p tcp -m multiport --dports 1,2 --sports 3", "cannot be combined"),
])
def test_options_iptables_takes_once_are_syntax_errors_when_repeated(spec, what):
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"iptables -A INPUT {spec} -j ACCEPT\n")
    assert e.value.errors[0].exit_code == 2 and what in e.value.errors[0].message


def test_two_instances_of_a_module_are_both_kept():
    ms = rule("-A INPUT -p tcp -m tcp --dport 22 -m tcp --sport 80 -j ACCEPT").matches
    assert sum(isinstance(m, ir.Port) for m in ms) == 2


@pytest.mark.parametrize("spec,what", [
    ("-j LOG --log-prefix a --log-prefix b", "only be used once"),
    ("-j MARK --set-mark 1 --or-mark 2", "cannot be combined"),
    ("-p ! tcp -j ACCEPT", "goes before the option"),
])
def test_target_option_rules_and_old_negation_are_syntax_errors(spec, what):
    table = "-t mangle " if "MARK" in spec else ""
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"iptables {table}-A PREROUTING {spec}\n" if table else
                              f"iptables -A INPUT {spec}\n")
    assert e.value.errors[0].exit_code == 2 and what in e.value.errors[0].message


def test_targets_iptables_refuses_by_table_or_hook_are_syntax_errors():
    for text, what in (("-t mangle -A PREROUTING -j REJECT", "not valid in chain PREROUTING"),
                       ("-t nat -A PREROUTING -j DROP", "not for filtering")):
        with pytest.raises(ErrorGroup) as e:
            parse_iptables_script(f"iptables {text}\n")
        assert e.value.errors[0].exit_code == 2 and what in e.value.errors[0].message


def test_values_read_as_iptables_reads_them():
    """Each checked against iptables 1.8.9's own iptables-save of the same rule."""
    (m,) = [x for x in rule("-A INPUT -s 10.1/16 -j ACCEPT").matches if isinstance(x, ir.Address)]
    assert str(m.values[0]) == "10.1.0.0/16"  # a short address is completed as a network
    ms = rule("-A INPUT -p icmp --icmp-type 255 -j ACCEPT").matches
    assert ir.Icmp("ip", None, ir.Range(0, 255)) in ms  # type 0xff is "any"
    (f,) = [x for x in rule("-A INPUT -p tcp --tcp-flags ALL NONE -j DROP").matches
            if isinstance(x, ir.TcpFlags)]
    assert f.mask == {"FIN", "SYN", "RST", "PSH", "ACK", "URG"}  # ALL is not ECE/CWR
    assert rule("-A INPUT -m tos --tos 0x10 -j ACCEPT").matches == (ir.Tos(0x10, 0xFF),)
    assert rule("-A INPUT -m tos --tos Minimize-Delay -j ACCEPT").matches == (ir.Tos(0x10, 0x3F),)
    for bad in ("-m limit ! --limit 10/s", "-p tcp -m multiport --dports 1-3",
                "-p tcp -m multiport --dports 5:5", "-p tcp --tcp-flags ECE ECE"):
        with pytest.raises(ErrorGroup) as e:
            parse_iptables_script(f"iptables -A INPUT {bad} -j ACCEPT\n")
        assert e.value.errors[0].exit_code == 2, bad
