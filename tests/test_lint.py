"""`fwc lint`: each check finds what it names, at the right place, and stays quiet on a sound
ruleset (the shipped examples, the Q&A host firewall done right)."""

from __future__ import annotations

import json

import pytest

from fwc.cli import main
from fwc.frontends import parse_text
from fwc.linter import lint
from tests.corpus import REPO


# an input chain done right: loopback, the established-first accept, ssh
HOST_INPUT = """:INPUT DROP [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
"""


def codes(text: str, fmt: str = "auto") -> list[tuple[str, int]]:
    return [(f.code, f.loc.line) for f in lint(parse_text(text, "t.rules", fmt))
            if f.level == "warning"]


QA_NO_EST = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT
COMMIT
"""


def test_qa_host_without_established_rule():
    got = codes(QA_NO_EST)
    assert ("no-established", 2) in got and ("loopback", 2) in got
    # FORWARD drops everything on purpose (no accept at all): nothing to say
    assert not [c for c in got if c[1] == 3]


def test_sound_host_firewall_has_no_warnings():
    text = (REPO / "examples" / "host-firewall.rules").read_text()
    assert codes(text) == []


def test_output_drop_needs_dns():
    base = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT DROP [0:0]
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p tcp --dport 443 -j ACCEPT
{}COMMIT
"""
    assert ("output-dns", 4) in codes(base.format(""))
    for dns in ("-A OUTPUT -p udp --dport 53 -j ACCEPT\n", "-A OUTPUT -p udp -j ACCEPT\n",
                "-A OUTPUT -d 10.0.0.53 -p udp -m multiport --dports 53,123 -j ACCEPT\n"):
        assert "output-dns" not in [c for c, _ in codes(base.format(dns))], dns
    # a udp rule for other ports does not help, nor one from privileged source ports only
    assert ("output-dns", 4) in codes(base.format("-A OUTPUT -p udp --dport 123 -j ACCEPT\n"))
    assert ("output-dns", 4) in codes(base.format(
        "-A OUTPUT -p udp --sport 1:1023 --dport 53 -j ACCEPT\n"))
    # a source range of unprivileged ports holds a query's port
    assert "output-dns" not in [c for c, _ in codes(base.format(
        "-A OUTPUT -p udp --sport 2000:65535 --dport 53 -j ACCEPT\n"))]


def test_unreachable_rule_is_located_with_the_rule_that_covers_it():
    text = "*filter\n" + HOST_INPUT + "-A INPUT -p tcp --dport 22 -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n"
    (f,) = [f for f in lint(parse_text(text, "t.rules")) if f.code == "unreachable"]
    assert f.loc.line == 6 and "t.rules:5:" in f.message


def test_unused_chains_with_rules_only():
    text = """*filter
:INPUT ACCEPT [0:0]
:used - [0:0]
:unused - [0:0]
:empty - [0:0]
-A INPUT -j used
-A used -j RETURN
-A unused -j DROP
COMMIT
"""
    assert codes(text) == [("unused-chain", 4)]


def test_ipv6_input_needs_neighbour_discovery():
    text = "*filter\n" + HOST_INPUT + "{}COMMIT\n"
    rs_text = text.format("")
    assert ("ipv6-nd", 2) in [(f.code, f.loc.line) for f in
                              lint(parse_text(rs_text, "t6.rules", family="ip6"))]
    ok = text.format("-A INPUT -p ipv6-icmp -j ACCEPT\n")
    assert "ipv6-nd" not in [f.code for f in lint(parse_text(ok, "t6.rules", family="ip6"))]
    # ct state new does not cover it: conntrack leaves neighbour discovery untracked
    new_only = text.format("-A INPUT -p ipv6-icmp -m conntrack --ctstate NEW -j ACCEPT\n")
    assert "ipv6-nd" in [f.code for f in lint(parse_text(new_only, "t6.rules", family="ip6"))]


def test_nft_verdict_maps_count():
    text = """table inet f {
  chain input { type filter hook input priority 0; policy drop;
    ct state vmap { established : accept, related : accept, invalid : drop }
    iifname vmap { lo : accept }
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    tcp dport 22 accept
  }
  chain output { type filter hook output priority 0; policy drop;
    ct state vmap { established : accept, related : accept }
    meta l4proto . th dport vmap { udp . 53 : accept, tcp . 443 : accept }
  }
}
"""
    assert codes(text, "nft") == []


def test_fast_path_note_and_exit_codes(tmp_path, capsys):
    p = tmp_path / "r.rules"
    p.write_text("*filter\n" + HOST_INPUT + "COMMIT\n")
    assert main(["lint", str(p)]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "[fast-path]" in out and "can move" in out
    p.write_text(QA_NO_EST)
    assert main(["lint", "--json", str(p)]) == 1
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {f["code"] for f in found} >= {"no-established", "loopback"}
    assert all(f["file"] == str(p) and f["line"] == 2 for f in found if f["level"] == "warning")
    p.write_text("*filter\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n")
    assert main(["lint", str(p)]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.rules")),
                         ids=lambda p: p.name)
def test_examples_lint_without_crashing(path):
    found = lint(parse_text(path.read_text(), str(path)))
    assert all(f.loc.file == str(path) and f.loc.line > 0 for f in found)
