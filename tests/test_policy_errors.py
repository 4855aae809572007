"""Bad policies: every mistake is a located FwcError (never a traceback), with a hint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc import ir
from fwc.errors import FwcError, FwcSyntaxError
from fwc.policy import compile_full

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.stem: p.read_text() for p in sorted((ROOT / "examples").glob("*.policy"))}

# (policy, line, col, words the message must contain)
CASES = [
    ("input policy drop {\n  alow ssh\n}\n", 2, 3, ["unknown statement 'alow'",
                                                    "did you mean 'allow'"]),
    ("input policy drop {\n  allow ssh from admn\n}\nhost admin = 192.0.2.1\n", 2, 18,
     ["undefined name 'admn'", "did you mean 'admin'"]),
    ("service web = tcp/80\ninput policy drop {\n  allow from web\n}\n", 3, 14,
     ["'web' is a service", "'from' takes addresses"]),
    ("network lan = 192.0.2.0/24\ninput policy drop {\n  allow lan\n}\n", 3, 9,
     ["'lan' is an address list", "service"]),
    ("input policy drop {\n  allow 192.0.2.1\n}\n", 2, 9, ["is an address", "from 192.0.2.1"]),
    ("input policy drop {\n  allow tcp/70000\n}\n", 2, 9, ["ports are 0-65535"]),
    ("input policy drop {\n  allow tpc/22\n}\n", 2, 9, ["unknown protocol 'tpc'",
                                                        "did you mean 'tcp'"]),
    ("input policy drop {\n  allow ssh frm 192.0.2.1\n}\n", 2, 13, ["undefined name 'frm'",
                                                                    "did you mean 'from'"]),
    ("input policy drop {\n  allow ssh from\n}\n", 2, 17, ["expected an address"]),
    ("input policy drop {\n  allow ssh rate 10/sec burst\n}\n", 2, 30, ["expected number"]),
    ("input policy drop {\n  allow ssh rate 10/fortnight\n}\n", 2, 18, ["unknown rate unit"]),
    ("input policy drop {\n  allow icmp echo-requst\n}\n", 2, 14,
     ["unknown ICMP type", "did you mean 'echo-request'"]),
    ("host a = 192.0.2.1\nhost a = 192.0.2.2\n", 2, 6, ["duplicate definition of 'a'",
                                                        ":1:6"]),
    ("host a = 192.0.2.0/24\n", 1, 10, ["single addresses"]),
    ("network n = 192.0.2.1/24\n", 1, 13, ["host bits set", "did you mean 192.0.2.0/24"]),
    ("input policy drp\n", 1, 14, ["policy must be accept or drop", "did you mean 'drop'"]),
    ("input policy drop {\n  reject udp/53 with tcp-reset\n}\n", 2, 17, ["tcp-reset",
                                                                         "only tcp"]),
    ("input policy drop {\n  reject tcp/1 with tcp-rst\n}\n", 2, 21,
     ["unknown reject type", "did you mean 'tcp-reset'"]),
    ("input policy drop {\n  allow ssh\n", 1, 1, ["not closed"]),
    ("}\n", 1, 1, ["without an open block"]),
    ("nat {\n  dnat tcp/80 -> 192.0.2.1:99999\n}\n", 2, 18, ["invalid port"]),
    ("nat {\n  dnat tcp/80 iif eth0\n}\n", 2, 3, ["needs a target"]),
    ("nat {\n  dnat udp/53 -> 2001:db8::1\n  allow ssh\n}\n", 3, 3, ["nat block"]),
    ("input policy drop {\n  masquerade\n}\n", 2, 3, ["belongs in the nat block"]),
    ("input policy drop {\n  allow ssh oif eth0\n}\n", 2, 13, ["no output interface"]),
    ("output policy drop {\n  allow state nw\n}\n", 2, 15, ["unknown conntrack state",
                                                            "did you mean 'new'"]),
    ("allow ssh\n", 1, 1, ["outside a chain"]),
    ('input policy drop {\n  allow ssh log "x\n}\n', 2, 17, ["unterminated string"]),
    ("input { allow ssh }\n", 1, 7, ["'{' must end the header line"]),
    ("helper ftpp on tcp/21\n", 1, 8, ["unknown conntrack helper", "did you mean 'ftp'"]),
    ("helper ftp on udp/21\n", 1, 15, ["tcp/PORT"]),
    ("set s = t\nset t = s\n", 1, 5, ["defined in terms of itself"]),
    ("zone z = 192.0.2.1\n", 1, 10, ["not an interface name"]),
    ("input policy drop {\n}\ninput policy accept\n", 3, 1, ["duplicate 'input' chain"]),
    ("input policy drop {\n  allow from 192.0.2.1 to 2001:db8::1\n}\n", 2, 3,
     ["never match", "IPv4", "IPv6"]),
    ("input policy drop {\n  allow ssh from 192.0.2.1 from 192.0.2.2\n}\n", 2, 28,
     ["'from' given twice"]),
    ("host from = 192.0.2.1\n", 1, 6, ["reserved word"]),
    ("input policy drop {\n  allow ssh with tcp-reset\n}\n", 2, 13, ["only follows reject"]),
    ("include \"no-such-file.policy\"\n", 1, 9, ["cannot include"]),
    ("input policy drop lazy\n", 1, 19, ["unknown chain option 'lazy'"]),
    ("define X = 192.0.2.1, tcp/22\n", 1, 8, ["mixes"]),
    ("input policy drop {\n  allow tcp/22 from 192.0.2.1,\n    bogus\n}\n", 3, 5,
     ["undefined name 'bogus'"]),
    # nft's limits are bytes of UTF-8: 64 two-byte characters are 128 bytes
    ("input policy drop {\n  allow tcp/22 log \"" + "é" * 64 + "\"\n}\n", 2, 16,
     ["log prefix is longer than 127 bytes"]),
    ("input policy drop {\n  allow tcp/22 comment \"" + "é" * 65 + "\"\n}\n", 2, 16,
     ["comment is longer than 128 bytes"]),
]


@pytest.mark.parametrize("text,line,col,words", CASES, ids=[c[3][0][:40] for c in CASES])
def test_located_error(text, line, col, words):
    with pytest.raises(FwcSyntaxError) as e:
        compile_full(text, "bad.policy")
    err = e.value
    assert (err.loc.file, err.loc.line, err.loc.col) == ("bad.policy", line, col), err.format()
    for w in words:
        assert w in err.message or w in str(err.loc) or w in err.format(), err.format()
    # the caret line shows the right source line
    if err.source_line is not None:
        assert err.source_line == text.splitlines()[line - 1]
        caret = err.format(caret=True).splitlines()
        assert caret[-1] == " " * (col - 1) + "^"


def test_cli_prints_caret_only_on_a_terminal():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "fwc", "compile", "-"], capture_output=True,
                       text=True, input="input policy drop {\n  allow tcp/22 frm x\n}\n",
                       env=env)
    assert p.returncode == 2
    assert p.stderr == ("<stdin>:2:16: error: undefined name 'frm' (did you mean 'from'?)\n")


def test_cli_missing_file_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "fwc", "compile", str(tmp_path / "nope")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "cannot read policy" in p.stderr


def test_unreadable_policies_and_includes_are_located_errors(tmp_path, monkeypatch):
    """Not UTF-8 (top level, included, stdin) or over the input cap: exit 2 with a location,
    never an internal error; an endless stream is not read to the end of memory."""
    from fwc import frontends
    from fwc.cli import main
    (tmp_path / "bad.policy").write_bytes(b"\xff\xfehost x = 1.2.3.4\n")
    (tmp_path / "a.policy").write_text('include "bad.policy"\ninput policy drop\n')
    with pytest.raises(FwcSyntaxError) as ei:
        compile_full((tmp_path / "a.policy").read_text(), str(tmp_path / "a.policy"))
    # (at the byte, in the included file, as nft includes are)
    assert (ei.value.loc.file, ei.value.loc.line, ei.value.loc.col,
            "not UTF-8" in ei.value.message) == (str(tmp_path / "bad.policy"), 1, 1, True)
    monkeypatch.setattr(frontends, "MAX_INPUT_BYTES", 1000)
    (tmp_path / "big.policy").write_text("# x\n" * 1000)
    assert main(["compile", str(tmp_path / "big.policy")]) == 2
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "fwc", "compile", "-"], capture_output=True,
                       input=b"\xffinput policy drop\n", env=env)
    assert p.returncode == 2 and p.stderr.startswith(b"<stdin>:") and b"not UTF-8" in p.stderr


# ------------------------------------------------------------------ mutated examples

WORDS = ["allow", "drop", "from", "to", "iif", "oif", "tcp/22", "udp/99999", "icmp", "{", "}",
         "->", "rate", "10/second", "log", '"', ",", "192.0.2.300", "2001:db8::/129", "state",
         "host", "=", "zone", "nat", "dnat", "with", "burst", "$", "#", "\\", "input", "policy",
         "helper", "include", "lo", "ssh", "web", "-", "/", ":", "\t", "\n", "é", "\x00"]


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    text = EXAMPLES[name]
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "dupline", "swapwords"]))
        if op == "insert":
            text = text[:pos] + draw(st.sampled_from(WORDS)) + text[pos:]
        elif op == "delete":
            n = draw(st.integers(1, 12))
            text = text[:pos] + text[pos + n:]
        elif op == "replace":
            w = draw(st.sampled_from(WORDS))
            text = text[:pos] + w + text[pos + len(w):]
        elif op == "dupline":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        else:
            words = text.split(" ")
            i = draw(st.integers(0, len(words) - 1))
            j = draw(st.integers(0, len(words) - 1))
            words[i], words[j] = words[j], words[i]
            text = " ".join(words)
    return name, text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_examples_fail_cleanly(case):
    name, text = case
    try:
        res = compile_full(text, f"{name}.policy")
    except FwcError as e:
        nlines = max(1, len(text.splitlines()))
        assert e.loc.file == f"{name}.policy"
        assert 1 <= e.loc.line <= nlines, (e.format(), text)
        assert e.loc.col >= 1
        assert e.message and "\n" not in e.message
        if e.source_line is not None:
            assert e.source_line == text.splitlines()[e.loc.line - 1]
        return
    # accepted: every rule still carries a location inside the file
    n = len(text.splitlines())
    for t in res.ruleset.tables:
        for c in t.chains:
            for r in c.rules:
                assert 1 <= r.loc.line <= n


def test_definition_cycles_depth_and_doubling_are_handled():
    """`define A = B` / `define B = A` is a located cycle; a chain of thousands of definitions
    a located error, not a crash; `s2 = s1, s1` does not double (25 levels stay small)."""
    from fwc.errors import FwcSyntaxError
    from fwc.policy import compile_policy
    with pytest.raises(FwcSyntaxError) as ei:
        compile_policy("define A = B\ndefine B = A\ninput policy drop {\n  allow from A\n}\n",
                       "c.policy")
    assert "defined in terms of itself" in ei.value.message and ei.value.loc.line == 1
    deep = "\n".join(["set s3000 = 1.2.3.4"] + [f"set s{n} = s{n + 1}" for n in range(3000)]
                     + ["input policy drop {", "  allow from s0", "}"]) + "\n"
    with pytest.raises(FwcSyntaxError) as ei:
        compile_policy(deep, "d.policy")
    assert "too deeply" in ei.value.message
    doubling = "\n".join(["service s0 = tcp/1"] + [f"service s{n + 1} = s{n}, s{n}"
                                                    for n in range(30)]
                         + ["input policy drop {", "  allow s30", "}"]) + "\n"
    rs = compile_policy(doubling, "b.policy")
    assert sum(len(c.rules) for t in rs.tables for c in t.chains) < 20


def test_rates_and_bursts_too_large_are_located_errors():
    from fwc.errors import FwcSyntaxError
    from fwc.policy import compile_policy
    for rule, needle in (("allow tcp/22 rate 99999999999999999999/second", "a rate over"),
                         ("allow tcp/22 rate 10/second burst 99999999999", "burst must be")):
        with pytest.raises(FwcSyntaxError) as ei:
            compile_policy(f"input policy drop {{\n  {rule}\n}}\n", "r.policy")
        assert needle in ei.value.message and ei.value.loc.line == 2


@pytest.mark.parametrize("text,col,words", [
    ('allow ssh comment "x\\n-A INPUT -j ACCEPT"', 23, "unknown escape '\\n'"),
    ('allow ssh log "a\\tb"', 19, "unknown escape"),
    ('allow ssh comment "a\x00b"', 23, "control character"),
    ('allow ssh log "p\x01q"', 19, "control character"),
])
def test_strings_refuse_control_characters_and_escapes(text, col, words):
    """A newline in a comment would start a line of its own in iptables-restore text (it
    injected `-A INPUT -j ACCEPT`); a NUL ends what iptables-restore reads of the rule."""
    with pytest.raises(FwcSyntaxError) as e:
        compile_full(f"input policy drop {{\n  {text}\n}}\n", "s.policy")
    assert (e.value.loc.line, e.value.loc.col, words in e.value.message) == (2, col, True), \
        e.value.format()


def test_string_escapes_and_a_carriage_return_before_a_comma():
    r = compile_full('input policy drop {\n  allow ssh comment "a\\"b\\\\c"\n'
                     "  allow http \r, https\n}\n", "s.policy")
    rules = [x for t in r.ruleset.tables for c in t.chains for x in c.rules]
    assert 'a"b\\c' in {x.comment for x in rules}
    assert any(isinstance(m, ir.Port) and len(m.ranges) == 2 for x in rules for m in x.matches)


def test_braces_inside_strings_are_text():
    r = compile_full('input policy drop {\n  allow ssh comment "a}b"\n  allow http log "{x}"\n}\n',
                     "b.policy")
    rules = [x for t in r.ruleset.tables for c in t.chains for x in c.rules]
    assert "a}b" in {x.comment for x in rules}
    assert "{x}" in {s.prefix for x in rules for s in x.statements if isinstance(s, ir.Log)}


@pytest.mark.parametrize("text,line,col", [
    ("input policy drop {\n\tallow tcp/22\tfrom nosuch\n}\n", 2, 20),
    ("input policy drop {\n  allow tcp/22 from\tnosuch\n}\n", 2, 21),
    ("input policy drop {\n  allow tcp/22,\n\ttcp/23 from\tnosuch\n}\n", 3, 14),
])
def test_error_columns_count_a_tab_as_one_character(text, line, col):
    with pytest.raises(FwcSyntaxError) as e:
        compile_full(text, "t.policy")
    assert (e.value.loc.line, e.value.loc.col) == (line, col), e.value.format()
