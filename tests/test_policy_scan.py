"""The hand-written fast path of the policy parser (fwc/policy/scan.py) against the pyparsing
grammar it shortcuts: wherever the fast path answers, it gives exactly pyparsing's tokens, it
never accepts what pyparsing refuses, and it does answer for the ordinary statements."""

from __future__ import annotations

from pathlib import Path

import pyparsing as pp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc.policy import parser as P
from fwc.policy import scan
from fwc.policy.parser import logical_lines

ROOT = Path(__file__).resolve().parent.parent
GRAMMARS = {"rule": P.RULE_BODY, "definition": P.DEF_BODY, "header": P.HEADER_BODY}


def slow(grammar, text):
    """pyparsing's tokens as plain lists, or None when it refuses the text."""
    try:
        toks = grammar.parse_string(text, parse_all=True)
    except pp.ParseBaseException:
        return None
    if grammar is P.RULE_BODY:
        return [list(g) for g in toks]
    return list(toks)


def agree(which: str, text: str, start: int = 0):
    """The fast answer after checking it against pyparsing's."""
    grammar = GRAMMARS[which]
    fast = scan.FAST[id(grammar)](text, start)
    want = slow(grammar, text)
    if fast is not None:
        assert want is not None, f"fast path accepted what pyparsing refuses: {text!r}"
        assert fast == want, text
    return fast, want


def split_statement(line: str):
    """(grammar name, padded body, start) the way _Parser.statement/header cut a line."""
    first = line.split()[0]
    word = P.re.match(r"[A-Za-z][\w-]*", first)
    first = word.group() if word else first
    if first in P.DEFINITION_KINDS:
        which = "definition"
    elif first in P.FILTER_ACTIONS or first in P.NAT_ACTIONS:
        which = "rule"
    elif first in P.DIRECTIONS or first == "nat":
        which = "header"
        line = line.rstrip("{ ").rstrip()
    else:
        return None
    return which, line[len(first):].rjust(len(line)), len(first)


def example_lines():
    for path in sorted((ROOT / "examples").glob("*.policy")):
        for ll in logical_lines(path.read_text()):
            got = split_statement(ll.text)
            if got is not None and ll.text != "}":
                yield got


def test_examples_take_the_fast_path_and_agree():
    handled = total = 0
    for which, text, start in example_lines():
        fast, want = agree(which, text, start)
        assert want is not None, text  # the examples are valid
        if '"' not in text and "\t" not in text:
            total += 1
            handled += fast is not None
            assert fast is not None, f"fast path declined an ordinary statement: {text!r}"
    assert total > 30 and handled == total


TRICKY = [
    ("rule", " ssh from 10.0.0.1, 10.0.0.2 to h iif eth0"),
    ("rule", " tcp/22,udp/53 from $NET to 2001:db8::/32 state new, established"),
    ("rule", " icmp echo-request, 3 icmpv6 rate 10/second burst 20 log level warn"),
    ("rule", " icmp from x"),
    ("rule", " icmp, ssh"),
    ("rule", " ssh, icmp"),
    ("rule", " ssh,icmpv6 from x"),
    ("rule", " icmp , icmpv6"),
    ("rule", " ssh, icmp echo-request"),
    ("rule", " icmpx, ssh"),
    ("rule", " from icmp, x"),
    ("definition", " x = icmp"),
    ("definition", " x = icmpv6, ssh"),
    ("rule", " ssh from a,"),
    ("rule", " ssh from"),
    ("rule", " from-x tos"),
    ("rule", " ssh state"),
    ("rule", " tcp/80 -> 192.0.2.10:8080"),
    ("rule", " tcp/80 ->"),
    ("rule", " tcp/80 with tcp-reset"),
    ("rule", " tcp/80 with"),
    ("rule", " ssh log"),
    ("rule", " ssh log level"),
    ("rule", " ssh log levelx"),
    ("rule", " ssh rate 10/sec burst"),
    ("rule", " ssh rate 10/sec burstx"),
    ("rule", " ssh comment"),
    ("rule", " a$from"),
    ("rule", " ssh iif eth+, wg*"),
    ("rule", " ssh ; drop"),
    ("rule", " 10.0.0.0/245"),
    ("rule", " status dnat,snat"),
    # words that start like from/to/iif/oif but are values (services are tried first)
    ("rule", " from/22 to x"),
    ("rule", " to:1:: from x"),
    ("rule", " from.x iif/x oif-y"),
    ("rule", " from\u00e9 x"),
    ("rule", " to$x"),
    ("rule", " ssh from fe80::1 to ::1"),
    ("definition", " x = 1, 2, tcp/22"),
    ("definition", " $x = a , b"),
    ("definition", " x = "),
    ("definition", " x = a,"),
    ("definition", " x"),
    ("definition", " from = 10.0.0.1"),
    ("definition", " x == a"),
    ("header", " policy drop stateless"),
    ("header", " policy"),
    ("header", " policy from"),
    ("header", " stateless policy drop"),
    ("header", " policyx drop"),
    ("header", " policy drop, x"),
]


def test_tricky_statements_agree():
    accepted = 0
    for which, text in TRICKY:
        fast, _ = agree(which, text)
        accepted += fast is not None
    assert accepted >= 12  # the valid ones above are taken by the fast path


WORDS = ["allow", "from", "to", "iif", "oif", "state", "status", "icmp", "icmpv6", "log",
         "level", "rate", "burst", "with", "comment", "->", ",", "=", "policy", "drop",
         "stateless", "10/second", "10.0.0.1", "10.0.0.0/24", "10.0.0.1/33", "2001:db8::1",
         "fe80::/10", "192.0.2.1-192.0.2.9", "tcp/22", "udp/1000-2000", "icmp/echo-request",
         "$x", "name", "eth+", "wg*", "5", "lo", "new", "a.b", "x-y", "from-x", "tos",
         "192.0.2.10:80", "[2001:db8::1]:443", ":8080", "$", "-", "/", "{", ";", "\u00e9",
         "warn", "tcp-reset", "1.2.3", "dead:beef", "_", "to$", "from/22", "to:1::", "iif.x",
         "oif-", "from\u00e9"]
SEPS = ["", " ", "  ", ", ", ",", " ,"]


@st.composite
def soup(draw):
    parts = draw(st.lists(st.tuples(st.sampled_from(SEPS), st.sampled_from(WORDS)),
                          max_size=10))
    lead = draw(st.integers(0, 3))
    return " " * lead + "".join(s + w for s, w in parts) + draw(st.sampled_from(["", " "]))


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(GRAMMARS)), soup())
def test_random_token_soup_agrees(which, text):
    agree(which, text)


VALUES = ["ssh", "tcp/22", "udp/53", "10.0.0.1", "10.0.0.0/8", "2001:db8::/32", "$NET", "h",
          "eth0", "eth+", "new", "established", "echo-request", "3", "lo", "x.y-z", "icmp",
          "icmpv6"]
KEYS = ["", "from", "to", "iif", "oif", "state", "status", "icmp", "icmpv6", "with", "->",
        "rate", "log", "log level", "burst", "policy"]


@st.composite
def clauses(draw):
    """Mostly well-formed clause sequences, so that many take the fast path."""
    out = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(KEYS))
        if key == "rate":
            out.append("rate " + draw(st.sampled_from(["10/second", "5/m burst 3", "1/x"])))
            continue
        vals = draw(st.lists(st.sampled_from(VALUES), min_size=0 if key else 1, max_size=3))
        out.append((key + " " if key else "") + draw(st.sampled_from([", ", ",", " , "])).join(
            vals))
    return " " + " ".join(out)


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(GRAMMARS)), clauses())
def test_random_clauses_agree(which, text):
    agree(which, text)


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(clauses(), soup()))
def test_plain_name_rules_take_the_shortcut_and_agree(text):
    """scan._simple_rule (one-name clauses) answers only where the general loop gives the same."""
    quick = scan._simple_rule(text, 0)
    if quick is not None:
        assert quick == scan._rule(text, 0), text


def test_shortcut_answers_the_usual_rule():
    text = " ssh from lan to web iif eth0"
    assert scan._simple_rule(text, 0) == scan._rule(text, 0) is not None
    assert scan._simple_rule(" tcp/22 from lan", 0) is None  # not a plain name: the loop
