"""The policy language: examples, lowering to the IR, the fwc compile command."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fwc
import fwc.api
from fwc import ir
from fwc.errors import FwcError, FwcSyntaxError
from fwc.policy import compile_full, compile_policy, compile_policy_file
from fwc.policy.lower import rule_families, split_ruleset

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.policy"))
REQUIRED = {"qa-host", "egress-server", "nat-router", "dualstack-web", "ftp-server"}


def chain(rs: ir.Ruleset, name: str) -> ir.Chain:
    c = rs.table("inet", "fwc").chain(name)
    assert c is not None, name
    return c


def user_rules(c: ir.Chain, line: int) -> list[ir.Rule]:
    return [r for r in c.rules if r.loc.line == line]


def test_required_examples_exist():
    assert REQUIRED <= {p.stem for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_with_located_rules(path):
    res = compile_policy_file(str(path))
    lines = path.read_text().splitlines()
    rules = [r for t in res.ruleset.tables for c in t.chains for r in c.rules]
    assert rules
    for r in rules:
        assert r.loc.file == str(path)
        text = lines[r.loc.line - 1]
        # every rule points at a rule line, or (stateful defaults, helpers) at its chain/helper
        assert text.strip().split()[0] in ("allow", "drop", "reject", "masquerade", "snat",
                                          "dnat", "redirect", "input", "output", "forward",
                                          "helper"), text
    assert res.warnings == (), [w.format() for w in res.warnings]


def _policy_lines(name: str) -> int:
    text = (ROOT / "examples" / f"{name}.policy").read_text()
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def test_examples_are_short():
    assert _policy_lines("qa-host") <= 10
    assert _policy_lines("egress-server") <= 22


def test_qa_host_lowering():
    rs = compile_policy_file(str(ROOT / "examples/qa-host.policy")).ruleset
    inp = chain(rs, "input")
    assert inp.base == ir.BaseHook("filter", "input", 0, "drop")
    assert chain(rs, "output").base.policy == "accept"
    assert rs.table("inet", "fwc").chain("forward") is None  # not declared, not created
    first, second = inp.rules[:2]
    assert first.matches == (ir.CtState(frozenset({"ESTABLISHED", "RELATED"})),)
    assert first.verdict == ir.Accept()
    assert second.matches == (ir.CtState(frozenset({"INVALID"})),) and second.verdict == ir.Drop()
    web = [r for r in inp.rules if any(isinstance(m, ir.Port) for m in r.matches)]
    assert len(web) == 1  # ssh, http, https: one rule, one family-free match
    port = next(m for m in web[0].matches if isinstance(m, ir.Port))
    assert port.ranges == (ir.Range(22, 22), ir.Range(80, 80), ir.Range(443, 443))
    assert not any(isinstance(m, ir.Address) for m in web[0].matches)


def test_mixed_family_rule_is_split_exactly():
    rs = compile_policy("host a = 192.0.2.7, 2001:db8::7\n"
                        "input policy drop {\n  allow ssh from a, 198.51.100.0/24\n}\n")
    rules = user_rules(chain(rs, "input"), 3)
    assert len(rules) == 2
    v4, v6 = rules
    assert v4.matches[0] == ir.Address("saddr", (ipaddress.ip_network("192.0.2.7/32"),
                                                 ipaddress.ip_network("198.51.100.0/24")))
    assert v6.matches[0] == ir.Address("saddr", (ipaddress.ip_network("2001:db8::7/128"),))
    assert [rule_families(r) for r in rules] == [{4}, {6}]


def test_from_v4_to_v6_never_matches_is_an_error():
    with pytest.raises(FwcSyntaxError) as e:
        compile_policy("input policy drop {\n  allow from 192.0.2.1 to 2001:db8::1\n}\n", "p")
    assert e.value.loc == ir.Loc("p", 2, 3)
    assert "never match" in e.value.message


def test_partial_family_overlap_keeps_the_common_family():
    rs = compile_policy("host a = 192.0.2.7, 2001:db8::7\n"
                        "output policy drop {\n  allow to a from 192.0.2.1\n}\n")
    rules = user_rules(chain(rs, "output"), 3)
    assert len(rules) == 1 and rule_families(rules[0]) == {4}


def test_icmp_types_and_families():
    rs = compile_policy("input policy drop {\n  allow ping\n  allow icmp\n}\n")
    inp = chain(rs, "input")
    ping = user_rules(inp, 2)
    assert [m for r in ping for m in r.matches if isinstance(m, ir.Icmp)] == [
        ir.Icmp("ip", 8), ir.Icmp("ip6", 128)]
    (anyicmp,) = user_rules(inp, 3)
    assert ir.Icmp("ip", None) in anyicmp.matches


@pytest.mark.parametrize("listed", ["allow ssh, icmp, icmpv6", "allow icmp, icmpv6, ssh",
                                    "service s = icmpv6, ssh, icmp\n  allow s",
                                    "define s = icmp, ssh, icmpv6\n  allow s"])
def test_icmp_in_a_service_list_is_the_whole_protocol(listed):
    """`icmp` alone is the clause; in a list (or a definition) it is the protocol's name, as
    docs/policy.md promises for every protocol: the same rules as one line per service."""
    def rules(body):
        text = "input policy drop {\n  " + body + "\n}\n"
        if body.startswith(("service", "define")):
            first, rest = body.split("\n", 1)
            text = first + "\ninput policy drop {\n" + rest + "\n}\n"
        c = chain(compile_policy(text), "input")
        return sorted(repr((r.matches, r.verdict)) for r in c.rules)
    assert rules(listed) == rules("allow ssh\n  allow icmp\n  allow icmpv6")
    assert len(rules(listed)) == 5  # the two defaults and one rule per protocol


def test_rate_log_comment_reject():
    rs = compile_policy('input policy accept {\n'
                        '  reject tcp/25 from 192.0.2.0/24 with tcp-reset log "smtp: " level warn'
                        ' rate 3/minute burst 2 comment "no mail"\n}\n')
    (r,) = user_rules(chain(rs, "input"), 2)
    assert r.verdict == ir.Reject("tcp-reset")
    assert r.statements == (ir.Log(prefix="smtp: ", level=4),)
    assert r.matches[-1] == ir.Limit(3, "minute", 2)
    assert r.comment == "no mail"


def test_rate_limited_rule_gets_one_value_per_rule():
    rs = compile_policy("input policy drop {\n  allow tcp/22 from 192.0.2.0/25, 192.0.2.128/25,"
                        " 198.51.100.0/24 rate 5/second\n}\n")
    rules = user_rules(chain(rs, "input"), 2)
    # 192.0.2.0/25 and .128/25 collapse into one /24: two disjoint prefixes, two buckets
    addrs = [m.values for r in rules for m in r.matches if isinstance(m, ir.Address)]
    assert addrs == [(ipaddress.ip_network("192.0.2.0/24"),),
                     (ipaddress.ip_network("198.51.100.0/24"),)]


def test_zones_become_interfaces():
    rs = compile_policy("zone lan = eth1, eth2\nzone wan = eth0\n"
                        "forward policy drop {\n  allow from lan to wan\n}\n")
    rules = user_rules(chain(rs, "forward"), 4)
    assert [r.matches for r in rules] == [
        (ir.Interface("iifname", "eth1"), ir.Interface("oifname", "eth0")),
        (ir.Interface("iifname", "eth2"), ir.Interface("oifname", "eth0"))]


def test_stateless_chain_has_no_defaults():
    rs = compile_policy("input policy drop stateless {\n  allow ssh\n}\n")
    assert len(chain(rs, "input").rules) == 1


def test_nat_router():
    rs = compile_policy_file(str(ROOT / "examples/nat-router.policy")).ruleset
    pre, post = chain(rs, "prerouting"), chain(rs, "postrouting")
    assert pre.base == ir.BaseHook("nat", "prerouting", -100, "accept")
    assert post.base == ir.BaseHook("nat", "postrouting", 100, "accept")
    dnat = pre.rules[0]
    assert dnat.verdict == ir.Dnat((ir.NatTarget(ipaddress.ip_network("203.0.113.10/32"),
                                                 ir.Range(80, 80)),))
    assert rule_families(dnat) == {4}  # the target is IPv4: so is the rule
    assert ir.Interface("iifname", "eth0") in dnat.matches
    masq = post.rules[0]
    assert masq.verdict == ir.Masquerade()
    assert ir.Interface("oifname", "eth0") in masq.matches


def test_ftp_helper_chain():
    rs = compile_policy_file(str(ROOT / "examples/ftp-server.policy")).ruleset
    c = chain(rs, "ct_helpers")
    assert c.base.hook == "prerouting" and c.base.type == "filter"
    assert -200 < c.base.priority < -100  # after conntrack (nft needs the entry), before dnat
    (v4helpers,) = [c for c in split_ruleset(rs).tables[0].chains if c.name == "ct_helpers"]
    assert v4helpers.base.priority == -300  # iptables: CT --helper template in raw
    assert v4helpers.rules[0].statements == (ir.CtHelperSet("ftp", template=True),)
    (r,) = c.rules
    assert r.statements == (ir.CtHelperSet("ftp", template=False),) and r.verdict is None
    assert ir.Port("tcp", "dport", (ir.Range(21, 21),)) in r.matches
    inp = chain(rs, "input")
    assert "RELATED" in inp.rules[0].matches[0].states


def test_include_relative_and_cycle(tmp_path):
    (tmp_path / "objs.policy").write_text("host admin = 198.51.100.9\n")
    (tmp_path / "main.policy").write_text('include "objs.policy"\n'
                                          "input policy drop {\n  allow ssh from admin\n}\n")
    rs = compile_policy_file(str(tmp_path / "main.policy")).ruleset
    assert user_rules(chain(rs, "input"), 3)
    (tmp_path / "a.policy").write_text('include "b.policy"\n')
    (tmp_path / "b.policy").write_text('\ninclude "a.policy"\n')
    with pytest.raises(FwcSyntaxError) as e:
        compile_policy_file(str(tmp_path / "a.policy"))
    assert e.value.loc.file.endswith("b.policy") and e.value.loc.line == 2


def test_define_infers_kind():
    rs = compile_policy("define ADMIN = 198.51.100.0/24\ndefine MGMT = tcp/22, tcp/9090\n"
                        "define UPLINK = eth0\n"
                        "input policy drop {\n  allow MGMT from $ADMIN iif $UPLINK\n}\n")
    (r,) = user_rules(chain(rs, "input"), 5)
    assert ir.Interface("iifname", "eth0") in r.matches
    assert ir.Port("tcp", "dport", (ir.Range(22, 22), ir.Range(9090, 9090))) in r.matches


def test_shadowed_rule_is_a_warning():
    res = compile_full("input policy drop {\n  allow tcp/1-1000 from 192.0.2.0/24\n"
                       "  drop tcp/22 from 192.0.2.128/25\n  allow tcp/22 rate 1/second\n"
                       "  allow tcp/22\n}\n", "p")
    msgs = [(w.loc.line, w.message) for w in res.warnings]
    assert (3, "unreachable rule: every packet it matches is already decided by the rule "
               "at line 2") in msgs
    assert not any(line == 5 for line, _ in msgs)  # a rate-limited rule lets packets through


def test_explain_lists_defaults():
    res = compile_full("input policy drop {\n  allow ssh\n}\n", "p")
    assert "ct state established,related accept" in res.explanation
    assert "ct state invalid drop" in res.explanation
    assert "forward: not declared" in res.explanation


def test_api_exports():
    assert fwc.compile_policy is compile_policy
    assert "compile_policy" in fwc.api.__all__ and "compile_policy" in fwc.API


def test_split_ruleset_for_iptables():
    rs = compile_policy_file(str(ROOT / "examples/dualstack-web.policy")).ruleset
    split = split_ruleset(rs)
    assert [t.family for t in split.tables] == ["ip", "ip6"]
    for t in split.tables:
        fam = 4 if t.family == "ip" else 6
        for c in t.chains:
            for r in c.rules:
                assert fam in rule_families(r)
                for m in r.matches:
                    if isinstance(m, ir.Address):
                        assert len(m.values) == 1
                assert not (r.statements and r.verdict is not None)


# ------------------------------------------------------------------------- the command


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "fwc", "compile", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env)


def test_cli_iptables_stdout_labelled():
    p = run_cli("examples/dualstack-web.policy", "--to", "iptables")
    assert p.returncode == 0, p.stderr
    v4, v6 = p.stdout.split("# ==== ip6tables-restore (IPv6) ====\n")
    assert v4.startswith("# ==== iptables-restore (IPv4) ====\n")
    assert "-s 203.0.113.0/24" in v4 and "2001:db8:bad::/48" in v6
    assert "2001:db8" not in v4 and "203.0.113" not in v6


def test_cli_iptables_output_prefix(tmp_path):
    out = tmp_path / "fw"
    p = run_cli("examples/qa-host.policy", "--to", "iptables", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "fw.v4").read_text().startswith("*filter")
    assert "icmpv6-type 135" in (tmp_path / "fw.v6").read_text()
    assert p.stdout == ""


def test_cli_syntax_error_exit_2():
    p = run_cli("-", stdin="input policy drop {\n  alow ssh\n}\n")
    assert p.returncode == 2
    assert p.stderr.startswith("<stdin>:2:3: error: unknown statement 'alow' (did you mean "
                               "'allow'?)")
    assert "Traceback" not in p.stderr


def test_cli_strict_warnings_exit_1():
    text = "input policy drop {\n  allow iif lo\n  allow ndp\n  allow ssh\n  allow ssh\n}\n"
    p = run_cli("-", "--strict", "--to", "iptables", stdin=text)
    assert p.returncode == 1
    assert "<stdin>:5:3: warning: unreachable rule" in p.stderr
    assert run_cli("-", "--to", "iptables", stdin=text).returncode == 0


def test_cli_explain_before_output():
    p = run_cli("examples/qa-host.policy", "--to", "iptables", "--explain")
    assert p.returncode == 0
    assert p.stdout.startswith("# fwc compile --explain")
    assert "default: ct state invalid drop" in p.stdout


def test_compile_policy_nft_helper():
    text = fwc.compile_policy_nft("input policy drop {\n  allow ssh from 192.0.2.0/24\n}\n")
    assert "table inet fwc {" in text
    assert "ip saddr 192.0.2.0/24 tcp dport 22 accept" in text


def test_explain_output_is_still_loadable_text():
    """--explain prepends '#' lines: comments to nft -f and to iptables-restore alike."""
    p = run_cli("examples/qa-host.policy", "--explain")
    assert p.returncode == 0
    body = [line for line in p.stdout.splitlines() if line.strip()]
    explanation = [line for line in body if line.startswith("#")]
    assert len(explanation) >= 10
    assert any(line.startswith("table inet fwc") for line in body)


# ------------------------------------------------------------------------- fast path, -O


def test_stateful_default_comes_from_the_fast_path_pass():
    text = ("input policy drop {\n  allow iif lo\n  allow ssh\n}\n"
            "output policy accept stateless {\n  drop tcp/25\n}\n")
    res = compile_full(text, "p")
    est = ir.Rule((ir.CtState(frozenset({"ESTABLISHED", "RELATED"})),), verdict=ir.Accept())
    inp, out = chain(res.ruleset, "input"), chain(res.ruleset, "output")
    assert inp.rules[0] == est and inp.rules[0].loc == ir.Loc("p", 1, 1)
    assert inp.rules[1].matches == (ir.CtState(frozenset({"INVALID"})),)
    assert est not in out.rules and len(out.rules) == 1  # stateless: none, as the policy says
    assert [(n.pass_name, n.loc.line) for n in res.notes] == [("fastpath", 1)]
    assert "chain input:" in res.notes[0].message
    # the same rule the optimiser's fast path would leave first
    from fwc.passes import fast_path
    assert fast_path(res.ruleset) == res.ruleset


def test_cli_explain_prints_the_pass_notes_and_o_runs_the_optimiser():
    p = run_cli("examples/qa-host.policy", "--explain")
    assert p.returncode == 0, p.stderr
    assert "examples/qa-host.policy:3:1: info: [fastpath] chain input: `ct state " \
           "established,related accept` added as the first rule" in p.stderr
    assert "[lookups]" not in p.stderr and p.stdout.startswith("# fwc compile --explain")
    p = run_cli("examples/qa-host.policy", "-O", "--explain")
    assert p.returncode == 0, p.stderr
    assert "[fastpath]" in p.stderr and "[lookups] chain input:" in p.stderr
    assert "ct state vmap { established : accept, related : accept, invalid : drop }" in p.stdout
    assert p.stdout.startswith("# fwc compile --explain")
    quiet = run_cli("examples/qa-host.policy", "-O")
    assert quiet.returncode == 0 and quiet.stderr == ""  # notes only with --explain
    ipt = run_cli("examples/qa-host.policy", "-O", "--to", "iptables")
    assert ipt.returncode == 0 and "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j " \
        "ACCEPT\n-A INPUT -m conntrack --ctstate INVALID" in \
        ipt.stdout


def test_cli_o_dead_rule_warnings_count_for_strict():
    # only the two /9s together cover the /8: the policy's check (one earlier rule) passes it,
    # the optimiser's dead-rule pass finds it after the sets pass merged them
    text = ("input policy drop {\n  allow iif lo\n  allow ndp\n  allow tcp/22 from 10.0.0.0/9\n"
            "  allow tcp/22 from 10.128.0.0/9\n  drop tcp/22 from 10.0.0.0/8\n}\n")
    assert run_cli("-", "--strict", stdin=text).returncode == 0
    opt = run_cli("-", "-O", "--strict", stdin=text)
    assert opt.returncode == 1, opt.stderr
    assert "<stdin>:6:3: warning: [dead] rule never matches" in opt.stderr
    assert "error: 1 warning(s) and --strict" in opt.stderr and opt.stdout == ""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_optimised_examples_mean_the_same(path):
    """`fwc compile -O` (both targets) against the plain compile, in the simulator."""
    from fwc.passes import optimize
    from passes_util import meaning_diff

    rs = compile_policy_file(str(path)).ruleset
    for target in ("nft", "iptables"):
        out = optimize(rs, target=target)
        assert meaning_diff(rs, out, n=200) == [], (path.stem, target)
        if target == "iptables":
            assert meaning_diff(split_ruleset(rs), split_ruleset(out), n=200) == []


def test_cli_o_moves_a_written_fast_path_and_names_its_blocker(tmp_path):
    """A stateless chain gets no default; its own `allow state established,related` is moved
    by the same pass as in translate -O, and --explain names the rule that keeps it back."""
    path = tmp_path / "sl.policy"
    path.write_text("input policy drop stateless {\n  allow iif lo\n  drop from 203.0.113.0/24\n"
                    "  allow ssh\n  allow state established,related\n}\n")
    plain = run_cli(str(path), "--explain")
    assert "[fastpath]" not in plain.stderr  # nothing added, nothing moved without -O
    p = run_cli(str(path), "-O", "--explain")
    assert p.returncode == 0, p.stderr
    assert f"{path}:5:3: info: [fastpath] chain input: `ct state established,related accept` " \
           f"cannot move before the rule at {path}:3:3" in p.stderr
    body = p.stdout[p.stdout.index("chain input {"):]
    assert body.index("ip saddr != 203.0.113.0/24 ct state established,related accept") < \
        body.index('iifname "lo" accept') < body.index("ip saddr 203.0.113.0/24 drop") < \
        body.index("\t\tct state established,related accept") < body.index("tcp dport 22")


SVC_POLICY = """\
network lan = 10.0.0.0/24, 2001:db8::/48
service mix = tcp/22, udp/1000-1010, tcp/80
input policy drop {
  allow mix from lan
  allow mix from lan rate 5/second
}
"""


def test_ports_of_several_protocols_are_one_lookup_per_family():
    from fwc.backends.iptables import emit_iptables
    rs = compile_policy(SVC_POLICY)
    rules = user_rules(chain(rs, "input"), 4)
    assert len(rules) == 2  # one per family, not per protocol
    for r in rules:
        (sm,) = [m for m in r.matches if isinstance(m, ir.SetMatch)]
        assert sm.keys == ("meta l4proto", "th dport")
        assert sm.elements == ((6, 22), (6, 80), (17, ir.Range(1000, 1010)))
    text = fwc.emit_nft(rs)
    assert "meta l4proto . th dport { tcp . 22, tcp . 80, udp . 1000-1010 } accept" in text
    # iptables has one protocol per rule; the rate-limited rule is split everywhere alike
    v4 = emit_iptables(split_ruleset(rs))["ip"]
    assert "-A INPUT -s 10.0.0.0/24 -p tcp -m multiport --dports 22,80 -j ACCEPT" in v4
    assert "-A INPUT -s 10.0.0.0/24 -p udp -m udp --dport 1000:1010 -j ACCEPT" in v4
    limited = user_rules(chain(rs, "input"), 5)
    assert not any(isinstance(m, ir.SetMatch) for r in limited for m in r.matches)
    assert len(limited) == 2 * 2  # family x protocol: one bucket each, as in iptables
    assert all(len(m.protos) == 1 for r in limited for m in r.matches if isinstance(m, ir.Proto))


@pytest.mark.parametrize("mark", ["\f", "\v", "\x1c", "\x85", "\u2028", "\u2029", "\r"])
def test_only_newline_ends_a_line_so_a_commented_rule_stays_commented(tmp_path, mark):
    """str.splitlines() would end a line at these: `# old:<FF>allow tcp/23` opened port 23."""
    text = f"input policy drop {{\n  allow ssh  # old:{mark}allow tcp/23\n}}\nbogus\n"
    p = tmp_path / "c.policy"
    p.write_bytes(text.encode())
    for args, stdin in (([str(p)], None), (["-"], text.encode())):
        r = subprocess.run([sys.executable, "-m", "fwc", "compile", *args], input=stdin,
                           capture_output=True)
        # the one error is `bogus`, on line 4: no rule for port 23, no line shifted
        assert r.returncode == 2 and b":4:1: error: unknown statement 'bogus'" in r.stderr, r.stderr
    ruleset = fwc.compile_policy(text.replace("bogus\n", ""), "c.policy")
    assert "23" not in fwc.emit_nft(ruleset)
    crlf = fwc.compile_policy(text.replace("bogus\n", "").replace("\n", "\r\n"), "c.policy")
    assert crlf == ruleset


def test_cli_iptables_output_writes_both_files_even_for_an_empty_family(tmp_path):
    """A stale fw.v6 from an earlier policy must not survive: it would be loaded by a deploy
    script.  A family without rules gets a file that restores to no change."""
    pol = tmp_path / "empty.policy"
    pol.write_text("# everything was removed from this policy\n")
    for suffix in ("v4", "v6"):
        (tmp_path / f"fw.{suffix}").write_text("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n")
    r = run_cli(str(pol), "--to", "iptables", "-o", str(tmp_path / "fw"))
    assert r.returncode == 0, r.stderr
    for suffix in ("v4", "v6"):
        text = (tmp_path / f"fw.{suffix}").read_text()
        assert "-A INPUT" not in text and "changes nothing" in text


def test_iptables_forms_iptables_restore_takes():
    """Each was written before in a form ip(6)tables-restore refuses: `--icmpv6-type any`,
    `--log-prefix ""`, a NAT port mapping on udplite; a 16-character interface pattern is
    refused by both tools, so by the policy too."""
    from fwc.commands.compile import render
    from fwc.errors import ErrorGroup
    rs = fwc.compile_policy('input policy drop {\n  allow icmpv6\n  allow ssh log ""\n}\n', "p")
    texts = render(rs, "iptables")
    assert "--icmpv6-type any" not in texts["ip6"] and "-p ipv6-icmp -j ACCEPT" in texts["ip6"]
    assert '--log-prefix ""' not in texts["ip"] and "-j LOG" in texts["ip"]
    with pytest.raises(ErrorGroup) as ei:
        render(fwc.compile_policy("nat {\n  redirect udplite/7 -> 8080\n}\n", "p"), "iptables")
    assert "udp, sctp or dccp" in ei.value.errors[0].message
    with pytest.raises(FwcError) as e2:
        fwc.compile_policy("input policy drop {\n  allow iif eth0123456789ab+\n}\n", "p")
    assert "at most 15 characters" in e2.value.message


def test_nat_with_a_port_on_a_tcp_and_udp_service_is_one_rule_per_protocol():
    """`dnat dns -> 192.0.2.10:53`: a `meta l4proto . th dport` lookup before a NAT port
    mapping is refused by nft ("transport protocol mapping is only valid after transport
    protocol match"); each protocol gets its rule (the nft front end, which refuses what nft
    refuses, reads the output back)."""
    from fwc.frontends.nft import parse_nft
    rs = fwc.compile_policy("nat {\n  dnat dns iif eth0 -> 192.0.2.10:53\n"
                            "  redirect dns iif eth1 -> 5353\n}\n", "n.policy")
    text = fwc.emit_nft(rs)
    assert "meta l4proto . th dport" not in text
    assert text.count("dport 53 dnat") == 2 and text.count("dport 53 redirect") == 2
    parse_nft(text, "out.nft")


def test_a_port_list_is_cut_where_multiport_is_full_a_range_taking_two_slots():
    """iptables-restore refuses a multiport of more than 15 entries, a range counting two: 8
    ranges are 16 (it was written as one rule, which iptables-restore refused)."""
    from fwc.commands.compile import render
    ports = ", ".join(f"tcp/{p}-{p + 1}" for p in range(1, 25, 3))
    rs = compile_policy("input policy drop {\n  allow " + ports + "\n}\n")
    out = render(rs, "iptables")["ip"]
    lines = [ln for ln in out.splitlines() if "--dport" in ln]
    assert len(lines) == 2
    for ln in lines:
        entries = ln.split("--dports ")[1].split()[0].split(",") if "--dports" in ln else ["x"]
        assert sum(2 if ":" in e else 1 for e in entries) <= 15, ln
    assert ir.multiport_chunks((ir.Range(1, 2),) * 7 + (ir.Range(5, 5),) * 2) == [
        (ir.Range(1, 2),) * 7 + (ir.Range(5, 5),), (ir.Range(5, 5),)]
