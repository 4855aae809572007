"""The iptables front end: IR for each construct, the real-world corpus, scripts, round trips."""

from __future__ import annotations

import ipaddress

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.errors import ErrorGroup, FwcError, FwcSyntaxError, Unsupported
from fwc.frontends import detect_format, load_ruleset, parse_text
from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from tests.corpus import REPO, corpus_id, real_world_files

N = ipaddress.ip_network


def one_rule(spec: str, table: str = "filter", chain: str = "INPUT", family: str = "ip") -> ir.Rule:
    text = f"*{table}\n-A {chain} {spec}\nCOMMIT\n"
    rs = parse_iptables_save(text, "t", family)
    return rs.tables[0].chain(chain).rules[0]


def test_core_matches_in_kernel_order():
    r = one_rule("-s 10.1.2.3/255.255.0.0 ! -d 192.0.2.0/24 -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT")
    assert r.matches == (
        ir.Interface("iifname", "eth+"),
        ir.Proto(frozenset({6})),
        ir.Address("saddr", (N("10.1.0.0/16"),)),
        ir.Address("daddr", (N("192.0.2.0/24"),), negate=True),
        ir.Port("tcp", "dport", (ir.Range(22, 22),)),
    )
    assert r.verdict == ir.Accept()
    assert r.loc.line == 2


def test_implicit_protocol_module_after_other_module():
    r = one_rule("-p tcp -m state --state NEW --dport 22 -j ACCEPT")
    assert ir.CtState(frozenset({"NEW"})) in r.matches
    assert ir.Port("tcp", "dport", (ir.Range(22, 22),)) in r.matches


def test_old_style_negation_is_refused_as_iptables_does_and_port_ranges():
    """iptables 1.8.9 refuses `--sport ! 1024:` ("invalid port/service `!'"), `--state ! NEW`,
    `--mark ! 1` (checked with iptables-restore): fwc says where the '!' belongs."""
    r = one_rule("-p udp ! --sport 1024: -j DROP")
    assert r.matches[-1] == ir.Port("udp", "sport", (ir.Range(1024, 65535),), negate=True)
    for old in ("-p udp --sport ! 1024: -j DROP", "-m state --state ! NEW -j DROP",
                "-m mark --mark ! 1 -j DROP"):
        with pytest.raises(ErrorGroup) as ei:
            one_rule(old)
        assert "'!' goes before the option" in ei.value.errors[0].message


def test_ctstate_keeps_virtual_snat_dnat():
    r = one_rule("-m conntrack --ctstate SNAT,DNAT -j ACCEPT", chain="FORWARD")
    assert r.matches == (ir.CtState(frozenset({"SNAT", "DNAT"})),)


def test_syn_is_tcp_flags():
    r = one_rule("-p tcp ! --syn -j DROP")
    assert r.matches[-1] == ir.TcpFlags(frozenset({"SYN", "RST", "ACK", "FIN"}), frozenset({"SYN"}), True)


def test_mark_target_forms_are_xmark():
    assert one_rule("-j MARK --set-mark 0x1", "mangle", "PREROUTING").statements == (
        ir.SetMark("meta", 1, 0xFFFFFFFF),)
    assert one_rule("-j MARK --or-mark 0x4", "mangle", "PREROUTING").statements == (
        ir.SetMark("meta", 4, 4),)
    assert one_rule("-j MARK --and-mark 0xf0", "mangle", "PREROUTING").statements == (
        ir.SetMark("meta", 0, 0xFFFFFF0F),)


def test_reject_default_is_explicit_port_unreachable():
    assert one_rule("-j REJECT").verdict == ir.Reject("port-unreachable")
    assert one_rule("-j REJECT --reject-with icmp6-adm-prohibited", family="ip6").verdict == \
        ir.Reject("admin-prohibited")


def test_source_list_expands_like_iptables():
    rs = parse_iptables_script("iptables -A INPUT -s 192.0.2.1,192.0.2.2 -d 10.0.0.1,10.0.0.2 -j DROP\n")
    rules = rs.tables[0].chain("INPUT").rules
    assert [(str(r.matches[0].values[0]), str(r.matches[1].values[0])) for r in rules] == [
        ("192.0.2.1/32", "10.0.0.1/32"), ("192.0.2.1/32", "10.0.0.2/32"),
        ("192.0.2.2/32", "10.0.0.1/32"), ("192.0.2.2/32", "10.0.0.2/32")]


def test_counters_prefix_becomes_counter_statement():
    rs = parse_iptables_save("*filter\n:INPUT ACCEPT [5:100]\n[3:180] -A INPUT -j ACCEPT\nCOMMIT\n")
    assert rs.tables[0].chain("INPUT").rules[0].statements == (ir.Counter(3, 180),)


def test_base_chain_priorities_follow_iptables_tables():
    rs = parse_iptables_save("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
                             "*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    nat, raw = rs.tables
    assert nat.chain("PREROUTING").base == ir.BaseHook("nat", "prerouting", -100)
    assert nat.chain("POSTROUTING").base == ir.BaseHook("nat", "postrouting", 100)
    assert raw.chain("PREROUTING").base.priority == -300


def test_script_and_save_forms_of_the_example_agree():
    a = load_ruleset(str(REPO / "examples/host-firewall.sh"))
    b = load_ruleset(str(REPO / "examples/host-firewall.rules"))
    assert a == b
    assert a.tables[0].chain("INPUT").base.policy == "drop"


def test_script_environment_settings_that_no_rule_uses_are_harmless():
    """`PATH="$PATH:/usr/sbin"`, `export PATH` and an unknown value no rule uses change no
    rule (real scripts start so); a use of such a value is refused, located at the use."""
    text = ('#!/bin/sh\n'
            'PATH="$PATH:/usr/sbin"\nexport PATH\n  readonly LAN\n'
            'WAN_IP=$(ip -4 addr show eth0 | cut -d/ -f1)\n'
            'X="$UNDEFINED"\nX=10.0.0.1\n'   # reassigned: known again
            'iptables -A INPUT -s $X -j DROP\n'
            'unset X\n')
    rs = parse_iptables_script(text, "s.sh")
    (rule,) = rs.table("ip", "filter").chain("INPUT").rules
    assert rule.matches[0].values[0] == ipaddress.ip_network("10.0.0.1/32")
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text + "iptables -A INPUT -d $WAN_IP -j DROP\n", "s.sh")
    (e,) = ei.value.errors
    assert (e.loc.line, e.loc.col) == (10, 22)
    assert "$WAN_IP is unknown to fwc (its assignment at line 5 column 8: command substitution" in e.message
    with pytest.raises(ErrorGroup) as ei:  # unset: undefined again
        parse_iptables_script(text + "iptables -A INPUT -d $X -j DROP\n", "s.sh")
    assert "undefined variable $X" in ei.value.errors[0].message


def test_an_undefined_variable_in_an_assignment_is_located_at_it():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script('  P="a:$NOPE"\niptables -A INPUT -p tcp --dport $P -j ACCEPT\n',
                              "s.sh")
    (e,) = ei.value.errors
    assert e.loc.line == 2 and "(its assignment at line 1 column 8: undefined variable $NOPE)" in e.message


def test_script_variables_continuations_and_commands():
    text = (
        'EXT="eth0"\nSSH=22\n'
        'iptables -N ssh-in\n'
        'iptables -A INPUT -i ${EXT} -p tcp \\\n   --dport $SSH -j ssh-in\n'
        'iptables -I INPUT 1 -i lo -j ACCEPT\n'
        'iptables -A ssh-in -j ACCEPT\n'
        'iptables -t nat -A POSTROUTING -o $EXT -j MASQUERADE\n'
        'ip6tables -P INPUT DROP\n'
    )
    rs = parse_iptables_script(text, "s.sh")
    filt = rs.table("ip", "filter")
    rules = filt.chain("INPUT").rules
    assert rules[0].matches == (ir.Interface("iifname", "lo"),)
    assert rules[1].matches[0] == ir.Interface("iifname", "eth0")
    assert rules[1].verdict == ir.Jump("ssh-in")
    assert rules[1].loc.line == 4
    assert rs.table("ip", "nat").chain("POSTROUTING").rules[0].verdict == ir.Masquerade()
    assert rs.table("ip6", "filter").chain("INPUT").base.policy == "drop"


@pytest.mark.parametrize("text,line,col,needle", [
    ("while true; do iptables -A INPUT -j ACCEPT; done\n", 1, 1, "shell construct 'while'"),
    ("if [ -x /sbin/iptables ]; then iptables -F; fi\n", 1, 1, "shell construct 'if'"),
    # (the assignment alone builds nothing: its value is refused where it is used)
    ("P=$((20+2))\niptables -A INPUT -p tcp --dport $P -j ACCEPT\n", 2, 34, "arithmetic"),
    ("X=\"$NOPE\"\niptables -A INPUT -s $X -j DROP\n", 2, 22, "undefined variable $NOPE"),
    ("W=$(ip -4 addr show eth0 | cut -d/ -f1)\niptables -A INPUT -d $W -j DROP\n", 2, 22,
     "command substitution"),
    ("P=$(cat ports)\nfor p in $P; do iptables -A INPUT -p tcp --dport $p -j ACCEPT; done\n",
     2, 10, "$P is unknown to fwc"),
    ("iptables -A INPUT -s $(cat x) -j DROP\n", 1, 22, "command substitution"),
    ("iptables -A INPUT -s $UNDEF -j DROP\n", 1, 22, "undefined variable"),
    # whether an iptables command runs must not hang on a host command's exit status
    ("echo 1 > /proc/sys/net/ipv4/ip_forward || iptables -A INPUT -j ACCEPT\n", 1, 43,
     "exit status of 'echo'"),
    ("modprobe nf_nat_ftp &&\n  iptables -A INPUT -j ACCEPT\n", 2, 3, "exit status of 'modprobe'"),
    # (the pipeline builds no rule, but what `||` runs depends on its exit status)
    ("iptables-save | grep -q X || iptables -F X\n", 1, 30, "exit status of 'iptables-save'"),
    ("echo x | sh\n", 1, 8, "shell operator '|'"),
    ("iptables -A INPUT -j ACCEPT >x 2>&1 | tee\n", 1, 37, "shell operator '|'"),
    ("iptables -A INPUT -j ACCEPT -m comment --comment a>b\n", 1, 51, "shell operator '>'"),
    ("iptables -F; iptables -A INPUT -s $NOPE -j DROP\n", 1, 35, "undefined variable"),
    ("grep -q x /etc/y\niptables -A INPUT -j ACCEPT\n", 1, 1, "not supported"),
    # bash's `&>` is `&` then `>` to sh: the command would go to the background
    ("iptables -F &>/dev/null\n", 1, 13, "shell operator '&'"),
])
def test_script_refuses_shell_constructs_with_location(text, line, col, needle):
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    e = ei.value.errors[0]
    assert (e.loc.line, needle in e.message) == (line, True), e.format()
    assert e.loc.col >= 1
    assert ei.value.exit_code == 1  # valid shell fwc does not follow: unsupported, not a typo


@pytest.mark.parametrize("text,line,code", [
    ("*filter\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -m nosuchmodule -j ACCEPT\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT --bogus -j ACCEPT\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -j nochain\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -j ACCEPT\n", 3, 2),
    ("*filter\n-A INPUT -p tcp --dport\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -m string --algo bm --string x\nCOMMIT\n", 2, 1),
    ("", 1, 2),
    ("*nosuchtable\nCOMMIT\n", 1, 2),
    ("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", 2, 2),
    ("*filter\n-A INPUT -j DNAT --to-destination 1.2.3.4\nCOMMIT\n", 2, 2),
])
def test_bad_input_gives_located_error(text, line, code):
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save(text, "bad.rules")
    e = ei.value.errors[0]
    assert e.loc.file == "bad.rules"
    assert e.loc.line == line, e.format()
    assert ei.value.exit_code == code


def test_unsupported_module_is_exit_1_and_names_it():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save("*filter\n-A INPUT -m string --algo bm --string x -j DROP\nCOMMIT\n",
                            "r")
    assert isinstance(ei.value.errors[0], Unsupported)
    assert "string" in ei.value.errors[0].message


def test_all_errors_reported_not_just_first():
    text = "*filter\n-A INPUT -s 1.2.3.999 -j ACCEPT\n-A INPUT --nope -j ACCEPT\nCOMMIT\n"
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save(text, "x")
    assert [e.loc.line for e in ei.value.errors] == [2, 3]


def test_crlf_and_trailing_blanks_are_tolerated():
    text = "*filter\r\n:INPUT DROP [0:0]   \r\n-A INPUT -p tcp --dport 22 -j ACCEPT  \r\nCOMMIT\r\n"
    rs = parse_iptables_save(text)
    assert rs.tables[0].chain("INPUT").rules[0].matches[-1].ranges == (ir.Range(22, 22),)


@pytest.mark.parametrize("text, line, col", [
    ("*filter\n    :INPUT DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n", 2, 5),
    ("*filter\n-A INPUT -j ACCEPT\n   COMMIT\n", 3, 4),
    ("  *filter\n-A INPUT -j ACCEPT\nCOMMIT\n", 1, 3),
    ("*filter\n\t# a comment\n-A INPUT -j ACCEPT\nCOMMIT\n", 2, 2),
])
def test_indented_table_chain_commit_and_comment_lines_are_refused(text, line, col):
    """iptables-restore tests a line's first character, so it reads an indented `*`, `:`, `#`
    or COMMIT line as a rule and refuses the file (Bad argument): measured with 1.8.9."""
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_save(text, "t")
    (err,) = e.value.errors
    assert isinstance(err, FwcSyntaxError) and "must start the line" in err.message
    assert (err.loc.line, err.loc.col) == (line, col)


def test_indented_rules_and_blank_lines_are_read():
    rs = parse_iptables_save("*filter\n   \n\t-A INPUT -j ACCEPT\n  -A INPUT -j DROP\nCOMMIT\n")
    assert [r.verdict for r in rs.tables[0].chain("INPUT").rules] == [ir.Accept(), ir.Drop()]


def test_format_detection():
    assert detect_format("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") == "iptables"
    assert detect_format("#!/bin/sh\niptables -A INPUT -j ACCEPT\n") == "iptables-script"
    assert detect_format("table ip filter {\n}\n") == "nft"


# ----------------------------------------------------------------------------- corpus

CORPUS = real_world_files()


def _count_rules(text: str) -> int:
    return sum(1 for line in text.splitlines()
               if line.lstrip().startswith("-A ") or (line.startswith("[") and " -A " in line))


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_real_world_corpus_parses_every_rule(path):
    rs = load_ruleset(str(path))
    assert sum(len(c.rules) for t in rs.tables for c in t.chains) == _count_rules(path.read_text())


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_round_trip_through_iptables_restore_text(path):
    rs = load_ruleset(str(path))
    for family, text in emit_iptables(rs).items():
        again = parse_iptables_save(text, "roundtrip", family)
        assert again.tables == tuple(t for t in rs.tables if t.family == family)


def test_corpus_is_present():
    from tests.corpus import REAL_WORLD, require
    require(REAL_WORLD)
    assert len(CORPUS) == 19


@pytest.mark.parametrize("spec,chain", [("-i eth0", "OUTPUT"), ("-o eth0", "INPUT")])
def test_interface_direction_checked_like_iptables(spec, chain):
    with pytest.raises(ErrorGroup) as ei:
        one_rule(f"{spec} -j ACCEPT", chain=chain)
    assert "can't use" in ei.value.errors[0].message
    assert ei.value.errors[0].loc.col == len(f"-A {chain} ") + 1


def test_inet_tables_split_per_family_in_iptables_output():
    icmp4 = ir.Rule((ir.Icmp("ip", 8),), verdict=ir.Accept())
    icmp6 = ir.Rule((ir.Proto(frozenset({58})), ir.Icmp("ip6", 128)), verdict=ir.Accept())
    both = ir.Rule((ir.Port("tcp", "dport", (ir.Range(22, 22),)),), verdict=ir.Accept())
    table = ir.Table("inet", "filter", (ir.Chain("INPUT", (icmp4, icmp6, both),
                                                  ir.iptables_base_hook("filter", "INPUT", "drop")),))
    out = emit_iptables(ir.Ruleset((table,)))
    assert "icmpv6" not in out["ip"] and "--icmp-type 8" in out["ip"] and "--dport 22" in out["ip"]
    assert "--icmp-type" not in out["ip6"] and "--icmpv6-type 128" in out["ip6"]
    assert "--dport 22" in out["ip6"]


def test_user_chain_line_ignores_what_follows_its_dash():
    # iptables-restore reads nothing after a user chain's '-' (a hand-edited `- DROP` loads)
    rs = parse_iptables_save("*filter\n:LOGGING - DROP [0:0]\n-A LOGGING -j DROP\nCOMMIT\n")
    assert rs.table("ip", "filter").chain("LOGGING").base is None
    with pytest.raises((ErrorGroup, FwcSyntaxError), match="bad counters"):
        parse_iptables_save("*filter\n:INPUT ACCEPT junk\nCOMMIT\n")  # as iptables-restore -c


def test_user_chain_line_with_counters_and_no_dash_is_a_user_chain():
    """`:NAME [0:0]` (Fedora's nf-persist files): iptables-nft-restore loads it (it ignores a
    user chain's policy word); a real policy word stays an error (legacy refuses it, nft
    ignores it: the writer meant something no user chain has)."""
    rs = parse_iptables_save("*nat\n:POSTROUTING ACCEPT [0:0]\n:PERSIST [0:0]\n"
                             "-A PERSIST -j RETURN\n-A POSTROUTING -j PERSIST\nCOMMIT\n")
    assert rs.table("ip", "nat").chain("PERSIST").base is None
    with pytest.raises((ErrorGroup, FwcSyntaxError), match="cannot have a policy"):
        parse_iptables_save("*filter\n:LOGGING DROP [0:0]\nCOMMIT\n")


@pytest.mark.parametrize("rule", [
    # each refused by iptables 1.8.9 too ("unknown option"): the prefix names two options of
    # what is loaded, the implicit udp match included once --sp has loaded it
    "-A INPUT -p udp --sp 53 -m multiport --dpo 1000,2000 -j ACCEPT",
    "-A INPUT -p udp -m multiport --dpo 1000,2000 -m udp --sp 53 -j ACCEPT",
    "-t nat -A POSTROUTING -o eth0 -j SNAT --to-s 192.0.2.1 --rand",
    "-A INPUT -p tcp --d 22 -j ACCEPT",
    "-A INPUT --app x",
    "-t nat -A PREROUTING -p tcp -j DNAT --to-destination 192.0.2.1 --random-fully",
])
def test_an_ambiguous_abbreviation_is_an_unknown_option(rule):
    with pytest.raises((ErrorGroup, FwcSyntaxError), match="unknown option"):
        parse_iptables_script(f"iptables {rule}\n")


def test_an_abbreviation_is_read_among_what_is_loaded_before_the_protocol_match():
    """`-p udp -m multiport --dport 1,2` is multiport's --dports (iptables loads the implicit
    udp match only when nothing loaded has the option); `-p tcp --dp 22` is tcp's --dport."""
    rs = parse_iptables_script("iptables -A INPUT -p udp -m multiport --dport 1000,2000 -j ACCEPT\n"
                               "iptables -A INPUT -p tcp --dp 22 -j ACCEPT\n")
    r1, r2 = rs.table("ip", "filter").chain("INPUT").rules
    assert ir.Port("udp", "dport", (ir.Range(1000, 1000), ir.Range(2000, 2000))) in r1.matches
    assert ir.Port("tcp", "dport", (ir.Range(22, 22),)) in r2.matches


def test_ipv6header_protocol_is_the_first_header_and_other_forms_are_refused():
    """`-p N -m ipv6header --header protocol`: no extension header, then N (nft `ip6 nexthdr
    N`, how fwc writes that back); written back as it was."""
    text = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m ipv6header --header protocol "
            "-m tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    rs = parse_iptables_save(text, "h.rules", "ip6")
    (r,) = rs.table("ip6", "filter").chain("INPUT").rules
    assert ir.FieldMatch("ip6 nexthdr", (6,)) in r.matches
    assert emit_iptables(rs)["ip6"].count("-p tcp -m ipv6header --header protocol -m tcp") == 1
    for rule in ("-m ipv6header --header protocol", "-p tcp -m ipv6header --header hop",
                 "-p tcp -m ipv6header --header protocol --soft",
                 "! -p tcp -m ipv6header --header protocol",
                 "-p tcp -m ipv6header ! --header protocol"):
        with pytest.raises((ErrorGroup, Unsupported), match="ipv6header is supported as"):
            parse_iptables_save(f"*filter\n-A INPUT {rule} -j DROP\nCOMMIT\n", "h.rules", "ip6")


def test_null_mask_ignores_the_address_as_xtables_does():
    rs = parse_iptables_script("iptables -A INPUT -s 0/0 -j ACCEPT\n"
                               "iptables -A INPUT -d any/0.0.0.0 -j DROP\n"
                               "ip6tables -A INPUT -s 0/0 -j ACCEPT\n")
    v4 = rs.table("ip", "filter").chain("INPUT").rules
    v6 = rs.table("ip6", "filter").chain("INPUT").rules
    for r in (*v4, *v6):  # 0.0.0.0/0 and ::/0 match every packet: no address test is left
        assert not [m for m in r.matches if isinstance(m, ir.Address) and m.values[0].prefixlen]


def test_sudo_prefix_and_set_options_in_scripts():
    text = "#!/bin/bash\nset -eo pipefail -ux\nsudo iptables -P INPUT DROP\n" \
           "sudo -E iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n"
    assert detect_format(text) == "iptables-script"
    rs = parse_iptables_script(text)
    c = rs.table("ip", "filter").chain("INPUT")
    assert c.base.policy == "drop" and len(c.rules) == 1
    # sudo of anything else: still refused, naming the command sudo runs
    with pytest.raises((FwcSyntaxError, ErrorGroup), match="command 'rm' is not supported"):
        parse_iptables_script("sudo rm -rf /tmp/x\n")
    with pytest.raises((FwcSyntaxError, ErrorGroup), match="command 'sudo' is not supported"):
        parse_iptables_script("sudo -u root iptables -A INPUT -j ACCEPT\n")  # (-u takes a user)


def test_word_splitting_fast_paths_agree_with_the_full_splitter(monkeypatch):
    import random
    import re
    from fwc.frontends import lex
    rnd = random.Random(7)
    alphabet = list('ab -"$#\\\';|&<>()x=1\t')

    def split(line, expand):
        try:
            return lex.split_words(line, ir.Loc("f", 1, 1), expand)
        except FwcError as e:
            return e.message
    lines = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
             for _ in range(20000)] + ['-A INPUT -j LOG --log-prefix "drop " -m comment --comment "a b"']
    expands = (None, lambda name, col: "V")
    fast = [split(line, e) for line in lines for e in expands]
    never = re.compile(r"")  # matches everywhere: every line takes the full splitter
    monkeypatch.setattr(lex, "_SPECIAL", re.compile(r"(?s)."))
    monkeypatch.setattr(lex, "_NOT_PLAIN_QUOTES", never)
    monkeypatch.setattr(lex, "_NOT_PLAIN_QUOTES_SH", never)
    full = [split(line, e) for line in lines for e in expands]
    assert fast == full
    last = lines[-1]
    assert fast[-2][-1] == lex.Word("a b", last.rindex('"a b"') + 1, True)


def test_ipv4_address_fast_path_agrees_with_ipaddress(monkeypatch):
    import random
    from fwc.frontends import values as V
    rnd = random.Random(5)
    texts = []
    for _ in range(5000):
        octets = [rnd.choice(["0", "1", "9", "10", "99", "255", "256", "01", "007", ""])
                  for _ in range(4)]
        plen = rnd.choice(["", "/0", "/8", "/24", "/32", "/33", "/08", "/00"])
        texts.append(".".join(octets) + plen)
    parse = V.parse_addr.__wrapped__

    def run(t):
        try:
            r = parse(t, "ip")
            return type(r), r
        except V.ValueError_ as e:
            return str(e)
    fast = [run(t) for t in texts]
    monkeypatch.setattr(V, "_V4_CIDR", lambda t: None)
    assert fast == [run(t) for t in texts]
    assert fast[0] is not None and any(isinstance(x, tuple) for x in fast)


def test_script_leaves_host_setup_out_with_a_warning_each():
    text = ("#!/bin/sh\nmodprobe nf_conntrack_ftp\necho 1 > /proc/sys/net/ipv4/ip_forward\n"
            "sudo sysctl -w net.ipv4.conf.all.rp_filter=1 >/dev/null 2>&1\n"
            "iptables -A INPUT -p tcp --dport 22 -j ACCEPT\necho done\nexit 0\n"
            "iptables -A INPUT -j DROP\n")
    warnings: list = []
    rs = parse_iptables_script(text, "s.sh", warnings=warnings)
    rules = rs.table("ip", "filter").chain("INPUT").rules
    assert len(rules) == 1 and rules[0].verdict == ir.Accept()  # the shell never runs line 8
    assert [(w.loc.line, w.message.split(":")[0]) for w in warnings] == [
        (2, "'modprobe' left out"), (3, "'echo' left out"), (4, "'sysctl' left out"),
        (6, "'echo' left out"), (8, "not run")]
    assert "exits at line 7" in warnings[-1].message
    parse_iptables_script(text, "s.sh")  # without a list: the same ruleset, no warnings kept


def test_a_quoted_semicolon_chains_no_command_but_a_substitution_always_runs():
    warnings: list = []
    parse_iptables_script('echo -e "\\e[1;32m*\\e[00m stealth scan"\necho \'a;b|c\'\n'
                          "iptables -N STEALTH\n", warnings=warnings)
    assert [w.message.split(":")[0] for w in warnings] == ["'echo' left out"] * 2
    for line in ('echo "$(iptables -F)"', "echo `iptables -F`"):
        with pytest.raises((ErrorGroup, FwcSyntaxError, Unsupported)):
            parse_iptables_script(line + "\niptables -N X\n")


def test_a_host_command_piped_into_text_filters_is_left_out():
    """`echo 1 | sudo tee /proc/sys/net/ipv4/ip_forward` (sudo cannot redirect) builds no
    rule; a pipe into anything else (a shell, iptables-restore) is still refused."""
    warnings: list = []
    parse_iptables_script("echo 1 | sudo tee /proc/sys/net/ipv4/ip_forward >/dev/null\n"
                          "sysctl -a | grep forward\niptables -N X\n", warnings=warnings)
    assert [w.loc.line for w in warnings] == [1, 2] and "pipe into tee" in warnings[0].message
    for line in ("echo x | iptables-restore", "echo x | sh", "echo x | tee a | sh"):
        with pytest.raises((ErrorGroup, FwcSyntaxError, Unsupported)):
            parse_iptables_script(line + "\niptables -N X\n")


def test_saving_the_ruleset_and_routes_are_left_out_other_service_actions_are_refused():
    text = ("iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n/etc/init.d/iptables save\n"
            "service iptables save\nsudo route add -net 192.0.2.0/24 gw 10.0.0.1\n"
            "netfilter-persistent save\nifconfig eth0 up\n")
    warnings: list = []
    rs = parse_iptables_script(text, "s.sh", warnings=warnings)
    assert len(rs.table("ip", "filter").chain("INPUT").rules) == 1
    assert [(w.loc.line, w.message.split(":")[0]) for w in warnings] == [
        (2, "'/etc/init.d/iptables save' left out"), (3, "'service iptables save' left out"),
        (4, "'route' left out"), (5, "'netfilter-persistent save' left out"),
        (6, "'ifconfig' left out")]
    # stop flushes, restart loads a saved file fwc does not see: not left out
    for line in ("/etc/init.d/iptables stop", "service iptables restart"):
        with pytest.raises((ErrorGroup, Unsupported), match="is not supported"):
            parse_iptables_script(line + "\n")


@pytest.mark.parametrize("line", ["ip netns exec fw iptables -A INPUT -j DROP",
                                  "sudo ip netns exec fw iptables -A INPUT -j DROP",
                                  "ip netns exec fw sudo ip6tables -P INPUT DROP"])
def test_iptables_in_another_namespace_is_refused_not_left_out(line):
    """`ip netns exec NS iptables ...` builds another namespace's ruleset: refused, named (it
    was left out as an `ip` host command, so the rules silently went missing); other commands
    run in a namespace are still host setup."""
    with pytest.raises((ErrorGroup, Unsupported), match="iptables in network namespace 'fw'"):
        parse_iptables_script("iptables -A INPUT -j ACCEPT\n" + line + "\n")
    warnings: list = []
    parse_iptables_script("iptables -A INPUT -j ACCEPT\nip netns exec fw sysctl -w x=1\n",
                          warnings=warnings)
    assert [w.message.split(":")[0] for w in warnings] == ["'ip' left out"]


@pytest.mark.parametrize("rule,col", [
    ("-A INPUT -j CONNSECMARK --save", 13),
    ("-A INPUT -p tcp -j SECMARK --selctx system_u:object_r:http_packet_t:s0", 20),
    ("-A INPUT -j IDLETIMER --timeout 60 --label x", 13),
])
def test_known_unsupported_target_is_named_not_its_options(rule, col):
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save(f"*filter\n{rule}\nCOMMIT\n", "t.rules")
    (e,) = ei.value.errors
    assert ei.value.exit_code == 1 and "is not supported by fwc yet" in e.message
    assert (e.loc.line, e.loc.col) == (2, col)


def test_iptables_S_listing_reads_as_the_filter_table():
    text = ("-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N ssh-in\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -p tcp -m tcp --dport 22 -j ssh-in\n-A ssh-in -s 10.0.0.0/8 -j ACCEPT\n")
    rs = parse_text(text, "S.txt")
    filt = rs.table("ip", "filter")
    assert filt.chain("INPUT").base.policy == "drop"
    assert [r.verdict for r in filt.chain("INPUT").rules] == [ir.Accept(), ir.Jump("ssh-in")]
    assert len(filt.chain("ssh-in").rules) == 1
    # with a *table line it is a restore file, and a missing COMMIT is still an error
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save("*filter\n" + text, "r.txt")
    assert "COMMIT expected" in ei.value.errors[0].message


def test_iptables_L_output_is_refused_with_a_hint():
    text = ("Chain INPUT (policy DROP 0 packets, 0 bytes)\n"
            " pkts bytes target     prot opt in     out     source               destination\n"
            "    0     0 ACCEPT     all  --  lo     *       0.0.0.0/0            0.0.0.0/0\n")
    with pytest.raises(FwcSyntaxError) as e:
        parse_text(text, "L.txt")
    assert e.value.loc.line == 1 and "iptables-save" in e.value.message


@pytest.mark.parametrize("first,fmt", [
    ("destroy table inet filter", "nft"),  # Arch's nftables.conf (nft >= 1.0.7)
    ("flush ruleset", "nft"), ("define WAN = eth0", "nft"), ("-P INPUT DROP", "iptables"),
    ("iptables -P INPUT DROP", "iptables-script"),
])
def test_detect_format_by_first_statement(first, fmt):
    assert detect_format(first + "\n", "x") == fmt


def test_set_target_reads_add_and_del_and_refuses_map_set():
    rs = parse_iptables_save("*filter\n-A INPUT -j SET --add-set a src,dst --exist --timeout 5 "
                             "--del-set b dst\nCOMMIT\n", "s.rules")
    (r,) = rs.table("ip", "filter").chain("INPUT").rules
    assert r.statements == (ir.IpsetUpdate("a", "add", ("src", "dst"), 5, True),
                            ir.IpsetUpdate("b", "del", ("dst",)))
    assert r.verdict is None  # SET goes on
    assert [s.updated for s in rs.table("ip", "filter").sets] == [True, True]
    for bad, code in (("-j SET --map-set m src --map-mark", 1), ("-j SET --timeout 5", 2),
                      ("-j SET --add-set a src,foo", 2), ("-j SET --del-set a src --timeout 3", 2)):
        with pytest.raises(ErrorGroup) as ei:
            parse_iptables_save(f"*filter\n-A INPUT {bad}\nCOMMIT\n", "s.rules")
        assert ei.value.exit_code == code, bad


def test_an_ipset_set_updates_cannot_be_shared_with_another_table():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save("*mangle\n-A PREROUTING -m set --match-set k src -j ACCEPT\nCOMMIT\n"
                            "*filter\n-A INPUT -j SET --add-set k src\nCOMMIT\n", "s.rules")
    assert "belongs to one table" in ei.value.errors[0].message


def test_iptables_S_listing_of_another_table_says_how_to_read_it():
    with pytest.raises(ErrorGroup) as ei:
        parse_text("-P POSTROUTING ACCEPT\n-A POSTROUTING -o eth0 -j MASQUERADE\n", "S.txt")
    assert all("`*nat` line first" in e.message for e in ei.value.errors)


def _only_rule(spec: str, family: str = "ip") -> ir.Rule:
    rs = parse_iptables_save(f"*filter\n-A INPUT {spec} -j ACCEPT\nCOMMIT\n", "t.rules", family)
    (chain,) = [c for c in rs.tables[0].chains if c.rules]
    (rule,) = chain.rules
    return rule


@pytest.mark.parametrize("spec,want", [
    # (what `iptables -A INPUT SPEC` lists: measured with iptables 1.8.9)
    ("-p hopopt", None), ("-p ip", None), ("-p 0", None), ("-p all", None),
    ("-p 010", 8), ("-p 0x11", 17), ("-p ipip", 94), ("-p mptcp", 6), ("-p ipv6-mh", 135),
    ("-p mobility-header", 135), ("-p TCP", 6), ("-p icmpv6", 58),
])
def test_protocol_names_and_numbers_as_iptables_reads_them(spec, want):
    protos = [m for m in _only_rule(spec).matches if isinstance(m, ir.Proto)]
    assert protos == ([] if want is None else [ir.Proto(frozenset({want}))])


@pytest.mark.parametrize("spec,msg", [("! -p hopopt", "matches nothing"),
                                      ("! -p ip", "matches nothing"),
                                      ("-p 08", "unknown protocol"), ("-p 256", "out of range"),
                                      ("-p icmp6", "unknown protocol")])
def test_protocol_errors_as_iptables_gives_them(spec, msg):
    with pytest.raises(ErrorGroup) as ei:
        _only_rule(spec)
    assert msg in str(ei.value)


EXTHDR_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m rt --rt-type 0 -j DROP
-A INPUT -m rt ! --rt-segsleft 2:5 -j DROP
-A INPUT -m rt --rt-len 16 -j DROP
-A INPUT -m rt -j DROP
-A INPUT -m frag --fragmore -j DROP
-A INPUT -m frag --fraglast -j DROP
-A INPUT -m frag --fragfirst -j DROP
-A INPUT -m frag ! --fragid 5:10 -j DROP
-A INPUT -m frag -j DROP
-A INPUT -m hbh --hbh-len 8 -j DROP
-A INPUT -m dst ! --dst-len 24 -j DROP
-A INPUT -m hbh -j DROP
-A INPUT -p mh -m mh --mh-type binding-update -j DROP
-A INPUT -p mh -m mh ! --mh-type 3:5 -j DROP
-A INPUT -m ah --ahspi 500 -j DROP
-A INPUT -p esp -m esp --espspi 7 -j DROP
COMMIT
"""


def test_ipv6_extension_header_modules_round_trip_through_the_iptables_backend():
    rs = parse_iptables_save(EXTHDR_RULES, "ext.rules", "ip6")
    text = emit_iptables(rs)["ip6"]
    back = parse_iptables_save(text, "back.rules", "ip6")
    strip = lambda r: [[(x.matches, x.verdict) for x in c.rules] for t in r.tables  # noqa: E731
                       for c in t.chains]
    assert strip(back) == strip(rs)
    assert "-m rt --rt-type 0" in text and "-m frag --fragmore" in text and "-p 135 -m mh" in text


@pytest.mark.parametrize("spec,nft_has", [
    # numbers as xtables reads them (strtoul, base 0), each measured with iptables 1.8.9 -S
    ("-p tcp --dport 010", "dport 8"), ("-p tcp --dport 0x16", "dport 22"),
    ("-p tcp --dport +22", "dport 22"), ("-p tcp --dport 0x16:0x20", "dport 22-32"),
    ("-m mark --mark 010", "mark 0x8"), ("-m ttl --ttl-eq 077", "ttl 63"),
    ("-p tcp -m multiport --dports 010,0x16", "{ 8, 22 }"), ("-s 10.0.0.0/010", "10.0.0.0/8"),
    ("-m limit --limit 010/s", "rate 10/second"),  # libxt_limit: atoi, decimal
])
def test_numbers_in_c_notation_as_xtables_reads_them(spec, nft_has):
    from fwc.backends.nft import emit_nft
    rs = parse_iptables_save(f"*filter\n-A INPUT {spec} -j DROP\nCOMMIT\n", "n.rules", "ip")
    assert nft_has in emit_nft(rs)


@pytest.mark.parametrize("spec", ["-p tcp --dport 1_000", "-p tcp --dport \uff12\uff12",
                                  "-p tcp --dport 0b11", "-m mark --mark 1_0",
                                  "-m limit --limit 0x10/s", "-p 0x"])
def test_numbers_iptables_refuses_are_refused(spec):
    with pytest.raises(ErrorGroup):
        parse_iptables_save(f"*filter\n-A INPUT {spec} -j DROP\nCOMMIT\n", "n.rules", "ip")


def test_a_shebang_makes_a_script_whatever_its_first_command():
    from fwc.frontends import detect_format
    text = "#!/bin/sh\nfor p in 22 80; do iptables -A INPUT -p tcp --dport $p -j ACCEPT; done\n"
    assert detect_format(text) == "iptables-script"
    assert detect_format("#!/usr/sbin/iptables-restore\n*filter\nCOMMIT\n") == "iptables"


@pytest.mark.parametrize("arg,words", [
    # what iptables-restore 1.8.9 makes of each (tests/kernel/test_restore_quoting_kernel.py)
    ("'ab'", ["'ab'"]), ("it's", ["it's"]), ('"a\\tb"', ["atb"]), ('"ab"cd', ["ab", "cd"]),
    ("a\\ b", ["a\\", "b"]), ("x #y", ["x", "#y"]), ('a"b c"d', ["ab c", "d"]),
    ('"a\\"b"', ['a"b']), ('"a\\\\b"', ["a\\b"]), ('"Bob\\\'s"', ["Bob's"]), ('""', [""]),
    ('"x y"', ["x y"]),
])
def test_restore_lines_split_like_iptables_restore(arg, words):
    from fwc.frontends.lex import split_restore_words
    got = split_restore_words("-A INPUT --comment " + arg, ir.Loc("f", 1, 1))
    assert [w.text for w in got[3:]] == words
    assert got[3].col == len("-A INPUT --comment ") + 1


def test_unterminated_quote_in_a_restore_line_is_located():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save('*filter\n-A INPUT -m comment --comment "abc -j DROP\nCOMMIT\n', "f", "ip")
    e = ei.value.errors[0]
    assert (e.loc.line, e.loc.col) == (2, 31) and "unterminated" in e.message


def test_script_commands_separated_by_semicolons_and_double_ampersands():
    one_per_line = parse_iptables_script(
        "iptables -F\niptables -X\niptables -P INPUT DROP\n"
        "iptables -A INPUT -m comment --comment 'a;b && c' -j ACCEPT\n"
        "iptables -N LOGDROP\niptables -A LOGDROP -j DROP\n", "a.sh")
    chained = parse_iptables_script(
        "iptables -F; iptables -X ;iptables -P INPUT DROP;\n"
        "iptables -A INPUT -m comment --comment 'a;b && c' -j ACCEPT  # x; y\n"
        "iptables -N LOGDROP && iptables -A LOGDROP -j DROP\n", "b.sh")
    assert chained == one_per_line
    rule = chained.table("ip", "filter").chain("LOGDROP").rules[0]
    assert (rule.loc.line, rule.loc.col) == (3, 33)  # its -A
    assert chained.table("ip", "filter").chain("INPUT").rules[0].comment == "a;b && c"


def test_host_names_are_unsupported_not_syntax_errors():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save("*filter\n-A INPUT -s pxe.example.org -j ACCEPT\nCOMMIT\n", "h", "ip")
    assert ei.value.exit_code == 1 and "host name 'pxe.example.org'" in ei.value.errors[0].message
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save("*filter\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n", "h", "ip")
    assert ei.value.exit_code == 2


def test_family_flags_and_options_before_the_command():
    save = parse_iptables_save("*filter\n-6 -A INPUT -j DROP\n-4 -A INPUT -j ACCEPT\n"
                               "-p tcp -A INPUT --dport 22 -j ACCEPT\nCOMMIT\n", "f", "ip")
    plain = parse_iptables_save("*filter\n-A INPUT -j ACCEPT\n-A INPUT -p tcp --dport 22 "
                                "-j ACCEPT\nCOMMIT\n", "g", "ip")
    assert save == plain
    script = parse_iptables_script("iptables -4 -A INPUT -j ACCEPT\n"
                                   "iptables -p tcp -A INPUT --dport 22 -j ACCEPT\n"
                                   "iptables -nvL; iptables -t nat -vxnL POSTROUTING\n", "s.sh")
    assert script.table("ip", "filter") == plain.table("ip", "filter")
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script("iptables -6 -A INPUT -j ACCEPT\n", "s.sh")
    assert (ei.value.errors[0].loc.col, ei.value.exit_code) == (10, 2)


def test_unquoted_variables_split_into_words_like_the_shell():
    rs = parse_iptables_script('O="-p tcp --dport 22"\nE=\nX=$O\n'
                               'iptables -A INPUT $E $X -m comment --comment "$O" -j ACCEPT\n', "v.sh")
    rule = rs.table("ip", "filter").chain("INPUT").rules[0]
    assert rule.comment == "-p tcp --dport 22"
    assert rule.matches == parse_iptables_script(
        "iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n", "w.sh").table(
        "ip", "filter").chain("INPUT").rules[0].matches
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script('I="eth* eth1"\niptables -A INPUT -i $I -j ACCEPT\n', "g.sh")
    assert "glob" in ei.value.errors[0].message and ei.value.errors[0].loc.line == 2


@pytest.mark.parametrize("text,line,col,needle", [
    # what iptables refuses in the state the script built: an error when nothing tests it
    ("iptables -A INPUT -j FOO\niptables -N FOO\n", 1, 22, "chain 'FOO' does not exist"),
    ("iptables -N A\niptables -A A -j ACCEPT\niptables -X A\n", 3, 13, "not empty"),
    ("iptables -N A\niptables -A INPUT -j A\niptables -X\n", 3, 10, "in use"),
    ("iptables -N A\niptables -N B\niptables -E A B\n", 3, 15, "'B' already exists"),
    ("iptables -N A\niptables -E A OUTPUT\n", 2, 15, "'OUTPUT' already exists"),
    ("iptables -C INPUT -j ACCEPT\n", 1, 13, "-C: no such rule"),
    ("iptables -N A\niptables -P A DROP\n", 2, 13, "only built-in chains"),
    ("iptables -A INPUT -j ACCEPT\niptables -R INPUT 2 -j DROP\n", 2, 19, "no rule number 2"),
    ("iptables -N X || true\niptables -N X\n", 2, 13, "already exists"),
])
def test_script_command_iptables_refuses_is_an_error_unless_tested(text, line, col, needle):
    """(Removing what is not there is the exception: test_script_removing_what_is_absent...)"""
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    e = ei.value.errors[0]
    assert (e.loc.line, e.loc.col, needle in e.message) == (line, col, True), e.format()
    assert ei.value.exit_code == 2


def test_script_and_or_lists_and_redirections():
    plain = parse_iptables_script("iptables -N LOG2\niptables -A LOG2 -j DROP\n"
                                  "iptables -A INPUT -p tcp --dport 22 -j LOG2\n", "a.sh")
    lists = parse_iptables_script(
        "iptables -N LOG2 >/dev/null 2>&1 || true\n"
        "iptables -N LOG2 2>/dev/null || iptables -F LOG2   # exists: flushed\n"
        "iptables -C LOG2 -j DROP 2>>/var/log/fw || iptables -A LOG2 -j DROP\n"
        "iptables -C LOG2 -j DROP || iptables -A LOG2 -j DROP\n"
        "iptables -C LOG2 -j DROP &&\n"
        "  # a comment line inside the list\n"
        "  iptables -A INPUT -p tcp --dport 22 -j LOG2 2> /dev/null ||\n"
        "  iptables -A INPUT -j REJECT\n"
        "iptables -A INPUT -j MISSING 2>/dev/null && iptables -A INPUT -j ACCEPT\n"
        "false && iptables -A INPUT -j ACCEPT\n", "b.sh")
    assert lists == plain
    rule = lists.table("ip", "filter").chain("INPUT").rules[0]
    assert (rule.loc.line, rule.loc.col) == (7, 12)  # its -A
    # a quoted '>' or '||' is part of a word
    rs = parse_iptables_script("iptables -A INPUT -m comment --comment 'a > b || c' -j ACCEPT "
                               "2>/dev/null\n", "c.sh")
    assert rs.table("ip", "filter").chain("INPUT").rules[0].comment == "a > b || c"


@pytest.mark.parametrize("text,line,col,needle", [
    ("for x; do :; done\n", 1, 1, "only `for NAME in WORDS"),
    ("for p in 22 80\niptables -A INPUT -j ACCEPT\n", 1, 1, "without `do`"),
    ("for p in 22 80; do\niptables -A INPUT -j ACCEPT\n", 1, 1, "without `done`"),
    ("for f in /etc/fw/*.rules; do :; done\n", 1, 10, "a glob"),
    ("for p in $(seq 1 3); do :; done\n", 1, 10, "command substitution"),
    ("for p in $NOPE; do :; done\n", 1, 10, "undefined variable"),
    ("for p in 1; do :; done > /dev/null\n", 1, 1, "plain `done`"),
    ("true && for p in 1; do :; done\n", 1, 9, "`&&`/`||` list"),
    ("for p in 1; do while true; do :; done; done\n", 1, 16, "'while'"),
])
def test_unsupported_loops_are_located(text, line, col, needle):
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    e = ei.value.errors[0]
    assert (e.loc.line, e.loc.col, needle in e.message) == (line, col, True), e.format()


def test_for_loop_error_in_the_body_is_reported_once():
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script("for p in 1 2 3; do\n  iptables -A INPUT -p tcp --dport $p "
                              "-j NOWHERE\ndone\n", "s.sh")
    assert [(e.loc.line, e.loc.col) for e in ei.value.errors] == [(2, 42)]


def test_a_file_with_4_and_6_rules_is_both_families():
    text = ("*filter\n:INPUT DROP [0:0]\n-4 -A INPUT -p icmp -j ACCEPT\n"
            "-6 -A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    both = parse_iptables_save(text, "d.rules")
    assert [t.family for t in both.tables] == ["ip", "ip6"]
    for t, fam in zip(both.tables, ("ip", "ip6")):
        assert t == parse_iptables_save(text, "d.rules", fam).tables[0]
        assert len(t.chain("INPUT").rules) == 2 and t.chain("INPUT").base.policy == "drop"
    # an address of the other family in an unmarked rule: that restore tool refuses the file
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save(text.replace("--dport 22", "-s 10.0.0.0/8 --dport 22"), "d.rules")
    assert ei.value.errors[0].loc.line == 5


@pytest.mark.parametrize("rule,line,col,needle", [
    # what iptables-restore itself refuses (checked with iptables-restore --test)
    ("-A INPUT -p tcp ! --dport ! 22 -j ACCEPT", 3, 27, "'!' goes before the option"),
    ("-A INPUT -p icmp --icmp-type 3/ -j ACCEPT", 3, 1, "missing ICMP code"),
    ("-A INPUT -j NFQUEUE --queue-balance 5:1", 3, 21, "--queue-balance 5:1"),
    ("-I INPUT 0 -j DROP", 3, 10, "invalid rule number 0"),
    ("[99999999999999999999999999:1] -A INPUT -j ACCEPT", 3, 1, "counter over 2^64"),
    ("-N X\n-A X -p tcp -j X\n-A INPUT -j X", 4, 1, "closes a loop"),
    ("-A INPUT -m limit --limit 10001/second -j ACCEPT", 3, 19, "rate too fast"),
    ("-A INPUT -m limit --limit-burst 10001 -j ACCEPT", 3, 19, "out of range 1-10000"),
    ("-A INPUT -p udp -m multiport --dports 5000:,53 -j ACCEPT", 3, 30, "need both ends"),
    ("-A INPUT -p udp -m multiport --sports :100 -j ACCEPT", 3, 30, "need both ends"),
    ("-A INPUT -m statistic ! --mode random --probability 0.2 -j DROP", 3, 25, "cannot be inverted"),
    ("-A INPUT -m statistic --mode nth --every 3 -j DROP", 3, 34, "requires --packet"),
    ("-A INPUT -m statistic --mode random --probability 0.5 --packet 1 -j DROP", 3, 37,
     "cannot be used together"),
])
def test_what_iptables_restore_refuses_is_a_located_syntax_error(rule, line, col, needle):
    text = "*filter\n:INPUT ACCEPT [0:0]\n" + rule.replace("-N X\n", "") + "\nCOMMIT\n"
    if "-N X" in rule:
        text = text.replace(":INPUT ACCEPT [0:0]\n", ":INPUT ACCEPT [0:0]\n:X - [0:0]\n")
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_save(text, "r.rules", "ip")
    e = ei.value.errors[0]
    assert (needle in e.message, e.loc.line, ei.value.exit_code) == (True, line, 2), e.format()
    if col > 1:
        assert e.loc.col == col


@pytest.mark.parametrize("text,needle", [
    ("fi\niptables -A INPUT -j ACCEPT\n", "'fi' without the construct"),
    ("iptables -F\ndone\n", "'done' without the construct"),
    ("if true; then iptables -F\niptables -A INPUT -j ACCEPT\n", "'if' without its 'fi'"),
    ("while true; do iptables -F\n", "'while' without its 'done'"),
])
def test_shell_syntax_errors_are_exit_2(text, needle):
    """What sh itself refuses (`sh -n`) is a syntax error; valid shell fwc does not follow is
    unsupported (exit 1, test_script_refuses_shell_constructs_with_location)."""
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    assert (needle in ei.value.errors[0].message, ei.value.exit_code) == (True, 2)


SH_SYNTAX_ERRORS = [
    # (script, line, column, message): what `sh -n` (dash) refuses
    ("iptables -A INPUT -j DROP &&\n", 1, 27, "'&&' at the end of the script"),
    ("iptables -A INPUT -j DROP ||\n# more\n\n", 1, 27, "'||' at the end of the script"),
    ("iptables -A INPUT -j DROP |\n", 1, 27, "'|' at the end of the script"),
    ("&& iptables -A INPUT -j DROP\n", 1, 1, "'&&' without a command before it"),
    ("iptables -A INPUT -j DROP &&\n&& true\n", 2, 1, "'&&' without a command before it"),
    ("iptables -A INPUT -j DROP || || true\n", 1, 30, "'||' without a command before it"),
    ("iptables -A INPUT -j DROP; ; iptables -A INPUT -j DROP\n", 1, 28, "';' without a"),
    (";iptables -A INPUT -j DROP\n", 1, 1, "';' without a command"),
    ("iptables -A INPUT -j DROP | | true\n", 1, 29, "'|' without a command"),
    ("for i in a; do; iptables -A INPUT -j DROP; done\n", 1, 15, "';' without a command"),
    ("iptables -A INPUT -j DROP ;;\n", 1, 27, "';;' outside a case"),
    ("( iptables -A INPUT -j DROP\n", 1, 1, "'(' without its ')'"),
    ("iptables -A INPUT (x) -j DROP\n", 1, 19, "'(' in the middle of a command"),
    ("iptables -A INPUT -j DROP >\n", 1, 27, "a redirection without its file"),
    ("for; do iptables -A INPUT -j DROP; done\n", 1, 1, "without a variable name"),
    ("for 1x in a; do iptables -A INPUT -j DROP; done\n", 1, 1, "'1x' is not a variable"),
    ("for i on a; do iptables -A INPUT -j DROP; done\n", 1, 1, "`in` or `do` expected"),
]


@pytest.mark.parametrize("text,line,col,needle", SH_SYNTAX_ERRORS)
def test_what_sh_refuses_is_a_located_syntax_error(text, line, col, needle):
    """Operators without their commands, a stray `;;` or `)`, an unclosed `(` and malformed
    `for` headers: sh -n refuses the script, so fwc does too, with exit 2 (it used to read
    some of them as if the operator were not there, exit 0)."""
    import shutil
    import subprocess
    sh = shutil.which("dash") or shutil.which("sh")
    if sh is not None:
        assert subprocess.run([sh, "-n"], input=text, text=True, capture_output=True
                              ).returncode != 0
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    e = ei.value.errors[0]
    assert (e.loc.line, e.loc.col, needle in e.message, ei.value.exit_code) == \
        (line, col, True, 2), e.format()


@pytest.mark.parametrize("text,needle", [
    ("( iptables -A INPUT -j DROP; iptables -A INPUT -j ACCEPT )\n", "a subshell"),
    ("(iptables -A INPUT -j DROP\niptables -A INPUT -j ACCEPT)\n", "a subshell"),
    ("for i; do iptables -A INPUT -j DROP; done\n", "only `for NAME in WORDS"),
    ("for i do iptables -A INPUT -j DROP; done\n", "only `for NAME in WORDS"),
    ("iptables -A INPUT -j DROP |\ntee log\n", "shell operator '|'"),
    ("iptables -A INPUT -j DROP &\n", "shell operator '&'"),
    ("if true; then if true; then iptables -F; fi; fi\n", "shell construct 'if'"),
    ("while true; do while true; do iptables -F; done; done\n", "shell construct 'while'"),
])
def test_valid_sh_fwc_does_not_follow_is_unsupported(text, needle):
    """The same constructs in forms sh accepts: exit 1 (a nested `if` on one line used to end
    at its inner `fi` and call the outer one stray, exit 2)."""
    import shutil
    import subprocess
    sh = shutil.which("dash") or shutil.which("sh")
    if sh is not None:
        assert subprocess.run([sh, "-n"], input=text, text=True).returncode == 0
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    assert (needle in ei.value.errors[0].message, ei.value.exit_code) == (True, 1)


@pytest.mark.parametrize("text,needle", [
    ("#!/bin/bash\niptables -A INPUT -j DROP\nPORTS=(22 80)\n", "bash array"),
    ("IPS=(1.2.3.4 5.6.7.8)\niptables -A INPUT -j DROP\n", "bash array"),
    ("declare -a X=(a b)\niptables -A INPUT -j DROP\n", "bash arrays"),
    ("X+=(c)\niptables -A INPUT -j DROP\n", "bash arrays"),
    ("BAD_IP=(\n1.2.3.4\n)\niptables -A INPUT -j DROP\n", "not supported"),
    ("for ((i=0;i<3;i++)); do iptables -A INPUT -j DROP; done\n", "C-style"),
])
def test_bash_only_syntax_is_unsupported_not_a_syntax_error(text, needle):
    """bash takes these (dash does not): fwc does not follow them, exit 1 (real init scripts
    declare arrays of addresses and count with `for ((...))`)."""
    import shutil
    import subprocess
    bash = shutil.which("bash")
    if bash is not None:
        assert subprocess.run([bash, "-n"], input=text, text=True).returncode == 0
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text, "s.sh")
    assert (needle in ei.value.errors[0].message, ei.value.exit_code) == (True, 1), \
        ei.value.errors[0].format()


def test_loops_nest_on_one_line_as_deep_as_on_several():
    """`for a ...; do for b ...; do for c ...; do ...; done; done; done` (three deep on one
    line was "for loop without `done`")."""
    heads = ["for a in 1 2", "for b in 3 4", "for c in 5 6", "for d in 7 8"]
    for depth in (2, 3, 4):
        body = f"iptables -A INPUT -p tcp --dport 1{'$a$b$c$d'[:2 * depth]} -j ACCEPT"
        one = "; do ".join(heads[:depth]) + "; do " + body + "; done" * depth + "\n"
        many = "".join(h + "; do\n" for h in heads[:depth]) + body + "\n" + "done\n" * depth
        ports = [[r.matches[-1].ranges[0].lo for r in parse_iptables_script(t, "n.sh").table(
            "ip", "filter").chain("INPUT").rules] for t in (one, many)]
        assert ports[0] == ports[1] and len(ports[0]) == 2 ** depth, (depth, ports)


def test_assignments_before_a_command_are_its_environment_only():
    """`A=1 B=2 iptables ...` is valid sh: the assignments go to that command's environment,
    which iptables does not read, so they change no rule and no later `$A`; `A=1 B=2` alone
    assigns both, in order."""
    rs = parse_iptables_script('LC_ALL=C XT="a b" iptables -A INPUT -p tcp --dport 22 -j '
                               'ACCEPT\nA=80 B=$A\niptables -A INPUT -p tcp --dport $B -j DROP\n',
                               "e.sh")
    rules = rs.table("ip", "filter").chain("INPUT").rules
    assert [(r.matches[-1].ranges[0].lo, r.loc.col) for r in rules] == [(22, 28), (80, 10)]
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script("P=22 iptables -A INPUT -p tcp --dport $P -j DROP\n", "e.sh")
    assert "undefined variable $P" in ei.value.errors[0].message


def test_an_ipv6_non_contiguous_netmask_keeps_its_family():
    """`-s ::1/::ffff`: the masked value is ::1, not IPv4 0.0.0.1 (ipaddress.ip_address(1))."""
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s ::1/::ffff -j DROP\nCOMMIT\n"
    m = parse_iptables_save(text, "m.rules", "ip6").tables[0].chains[0].rules[0].matches[0]
    assert (m.expr, m.values, m.mask) == ("ip6 saddr", (ipaddress.ip_network("::1/128"),), 0xFFFF)


def test_a_host_command_kept_in_a_variable_is_assigned_then_left_out():
    """`IPSET=/sbin/ipset` is an assignment (not the ipset command), and `$IPSET -F` the host
    command it names; a later `P=/x/ip` assigns P, so `--dport $P` reads the new value."""
    text = ('IPSET=/sbin/ipset\n$IPSET -F\nMP="/sbin/modprobe"\n$MP nf_conntrack_ftp\n'
            "P=22\niptables -A INPUT -p tcp --dport $P -j ACCEPT\n")
    warnings: list = []
    rs = parse_iptables_script(text, "v.sh", warnings=warnings)
    assert len(rs.table("ip", "filter").chain("INPUT").rules) == 1
    assert [(w.loc.line, w.message.split(":")[0]) for w in warnings] == [
        (2, "'ipset' left out"), (4, "'modprobe' left out")]
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script(text.replace("P=22\n", "P=22\nP=/x/ip\n"), "v.sh")
    e = ei.value.errors[0]
    assert ("'/x/ip'" in e.message, e.loc.line, ei.value.exit_code) == (True, 7, 2)


SH_LINE_CASES = [
    "# block the bad net \\\niptables -A INPUT -s 10.0.0.0/8 -j DROP\n",
    "iptables -A INPUT -p tcp --dport 22 -j ACCEPT # note \\\niptables -A INPUT -p tcp --dport 23 -j ACCEPT\n",
    "iptables -A INPUT -p tcp \\\n  --dport 24 -j ACCEPT\n",
    "iptables -A INPUT -m comment --comment 'a\\' -p tcp --dport 25 -j DROP\n"
    "iptables -A INPUT -p tcp --dport 26 -j DROP\n",
    'iptables -A INPUT -p tcp --dport 27 -m comment --comment "x#y" -j DROP\n',
    "iptables -A INPUT -p tcp --dport 28 -j DROP\\\\\n",
]


@pytest.mark.parametrize("body", SH_LINE_CASES)
def test_scripts_are_cut_into_commands_as_sh_cuts_them(body):
    """sh itself is the judge: with `iptables` a function that prints one line per command,
    the commands sh runs are the rules fwc reads (a comment ending in a backslash does not
    swallow the next line; a backslash in single quotes is literal)."""
    import shutil
    import subprocess
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh on this machine")
    ran = subprocess.run([sh, "-c", 'iptables() { echo "$*"; }\n' + body], capture_output=True,
                         text=True).stdout.splitlines()
    try:
        rules = parse_iptables_script(body, "b.sh").table("ip", "filter").chain("INPUT").rules
    except ErrorGroup:
        rules = None
    if any(r.endswith("\\") for r in ran):  # (an argument fwc refuses as iptables would)
        assert rules is None
        return
    assert rules is not None and len(rules) == len(ran), (ran, rules)


def test_the_rule_list_keeps_its_counts_through_every_change():
    """_RuleList (what makes -C a lookup) against a plain list, on random edits."""
    import random
    from fwc.frontends.iptables import _RuleList
    rnd = random.Random(3)
    pool = [ir.Rule((), (), ir.Accept(), f"r{i}") for i in range(6)]
    a, b = _RuleList(), []
    for _ in range(2000):
        op = rnd.randrange(8)
        r = rnd.choice(pool)
        if op == 0:
            a.append(r), b.append(r)
        elif op == 1:
            k = rnd.randrange(len(b) + 1)
            a.insert(k, r), b.insert(k, r)
        elif op == 2 and b:
            k = rnd.randrange(len(b))
            del a[k], b[k]
        elif op == 3 and b:
            k = rnd.randrange(len(b))
            a[k] = r
            b[k] = r
        elif op == 4:
            k = rnd.randrange(len(b) + 1)
            a[k:k] = [r, r]
            b[k:k] = [r, r]
        elif op == 5 and rnd.random() < 0.05:
            a.clear(), b.clear()
        elif op == 6:
            a.extend([r]), b.extend([r])
        elif op == 7 and r in b:
            assert a.index_of(r) == b.index(r)
        assert list(a) == b and all(a.count_of(x) == b.count(x) for x in pool)
        assert all((x in a) == (x in b) for x in pool)


def test_script_removing_what_is_absent_is_a_warning():
    """`iptables -D INPUT -j FOO 2>/dev/null`, `-X OLD`, `-F OLD`: the idempotent idiom.  The
    command fails and changes nothing, as when the script runs; fwc goes on with a warning."""
    text = ("iptables -D INPUT -j FOO 2>/dev/null\niptables -X OLD\niptables -F OLD\n"
            "iptables -Z NOPE\niptables -D INPUT 3\niptables -N FOO\niptables -A INPUT -j FOO\n")
    warnings: list = []
    rs = parse_iptables_script(text, "i.sh", warnings=warnings)
    assert [r.verdict for r in rs.table("ip", "filter").chain("INPUT").rules] == [ir.Jump("FOO")]
    assert [w.loc.line for w in warnings] == [1, 2, 3, 4, 5]
    assert all("changes nothing" in w.message for w in warnings)


def test_reject_type_aliases_iptables_takes():
    """libipt_REJECT takes `tcp-rst`; libip6t_REJECT `policy-fail` and `reject-route`
    (checked with iptables-restore / ip6tables-restore)."""
    assert one_rule("-p tcp -j REJECT --reject-with tcp-rst").verdict == \
        one_rule("-p tcp -j REJECT --reject-with tcp-reset").verdict
    for alias, name in (("policy-fail", "icmp6-policy-fail"), ("reject-route", "icmp6-reject-route")):
        text = f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j REJECT --reject-with {{}}\nCOMMIT\n"
        a = parse_iptables_save(text.format(alias), "a.rules", "ip6")
        b = parse_iptables_save(text.format(name), "b.rules", "ip6")
        assert a == b


def test_here_documents_are_refused_not_read_as_commands():
    """The body of `cat > f <<EOF` is input, not commands: reading it as commands added a
    rule the script never runs.  `<<` inside quotes or a comment is text."""
    with pytest.raises(ErrorGroup) as ei:
        parse_iptables_script("iptables -A INPUT -j ACCEPT\ncat > /etc/x <<EOF\n"
                              "iptables -A INPUT -j DROP\nEOF\n", "h.sh")
    e = ei.value.errors[0]
    assert (e.loc.line, e.loc.col, ei.value.exit_code, "here-document" in e.message) == \
        (2, 14, 1, True)
    parse_iptables_script('iptables -A INPUT -m comment --comment "a<<b" -j ACCEPT # x << y\n',
                          "q.sh")


@pytest.mark.parametrize("text, what", [
    ("*filter\n-A FORWARD -j INPUT\nCOMMIT\n", "built-in chain INPUT"),
    ("*nat\n-A PREROUTING -g POSTROUTING\nCOMMIT\n", "built-in chain POSTROUTING"),
    ("*filter\n:X\nCOMMIT\n", "needs a policy"),
    ("*filter\n-A INPUT -m hashlimit --hashlimit-upto 5/s --hashlimit-name a "
     "--hashlimit-htable-size 99999999999\nCOMMIT\n", "out of range 0-4294967295"),
])
def test_what_iptables_restore_refuses_is_a_located_syntax_error(text, what):
    """Measured with iptables-restore 1.8.9: a jump to a built-in chain (RULE_APPEND failed),
    a chain line without a policy (policy invalid), a hashlimit table size over 32 bits."""
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_save(text, "t")
    assert isinstance(e.value.errors[0], FwcSyntaxError) and what in e.value.errors[0].message


def test_a_script_jumping_to_a_built_in_chain_is_a_syntax_error():
    with pytest.raises(ErrorGroup, match="built-in chain INPUT") as e:
        parse_iptables_script("iptables -A FORWARD -j INPUT\n")
    assert e.value.exit_code == 2


def test_a_chain_name_with_a_colon_gets_an_nft_name():
    """nft 1.0.6 scans `X:Y` as three tokens (only hex-like `a:b` as one word)."""
    from fwc.backends.nft import emit_nft
    out = emit_nft(parse_iptables_save("*filter\n:X:Y - [0:0]\n-A INPUT -j X:Y\nCOMMIT\n", "t"))
    assert "chain X_Y {" in out and "jump X_Y" in out and "X:Y" not in out


def test_a_quoted_value_may_span_lines_as_in_sh():
    """`MACS="a⏎b"` then `for m in $MACS`: the newline stays in the value and splits the loop's
    words (a real rc.firewall does this; it was "unterminated double quote", exit 2)."""
    rs = parse_iptables_script('X="1\n2"\nfor m in $X; do iptables -A INPUT -s 10.0.0.$m '
                               "-j ACCEPT; done\n", "q.sh")
    srcs = [str(r.matches[0].values[0]) for r in rs.table("ip", "filter").chain("INPUT").rules]
    assert srcs == ["10.0.0.1/32", "10.0.0.2/32"]
    with pytest.raises(ErrorGroup, match="unterminated double quote"):
        parse_iptables_script('iptables -A INPUT -j DROP "\n', "q.sh")


@pytest.mark.parametrize("written, read", [
    ("010.0.0.1", "8.0.0.1/32"), ("0x0a.0.0.1", "10.0.0.1/32"), ("192.168.001.010", "192.168.1.8/32"),
    ("0012.1.1.1", "10.1.1.1/32"), ("0x0a", "10.0.0.0/32"), ("10.0.0.1/255.0x0.0.0", "10.0.0.0/8"),
])
def test_ipv4_parts_are_c_numbers_as_xtables_reads_them(written, read):
    """iptables 1.8.9 (measured with -S): 010 is octal 8, 0x0a hex 10, a short address is
    completed with zeros; `1.2.3.08` is no number (iptables looks it up as a host name)."""
    r = one_rule(f"-s {written} -j ACCEPT")
    assert [str(v) for v in r.matches[0].values] == [read]
    with pytest.raises(ErrorGroup, match="invalid address"):
        one_rule("-s 1.2.3.08 -j ACCEPT")


@pytest.mark.parametrize("first", [
    "iptables-save > /etc/iptables/rules.v4", "[ -f /etc/default/fw ] && . /etc/default/fw", ":",
    "( iptables -A INPUT -j ACCEPT )", "[[ -n x ]] && true", "! iptables -C INPUT -j ACCEPT",
    "modprobe ip_conntrack_ftp", "setup() {",
])
def test_a_script_without_a_shebang_is_told_from_a_save_file_by_any_shell_line(first):
    """A first line only a shell script can have ([ test ], :, a subshell, !, host commands)
    makes the file a script; it was read as iptables-save input ("expected a command")."""
    assert detect_format(f"{first}\niptables -A INPUT -j DROP\n") == "iptables-script"


def test_counters_and_chain_lines_still_start_a_save_file():
    assert detect_format("[0:0] -A INPUT -j ACCEPT\nCOMMIT\n") == "iptables"
    assert detect_format(":INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n") == "iptables"
