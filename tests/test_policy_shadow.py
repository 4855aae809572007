"""The unreachable-rule check: its index finds exactly what comparing every earlier rule finds."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc.policy import compile_full
from fwc.policy.resolve import Resolver
from fwc.policy.shadow import covers, shadowed

ADDRS = ["10.0.0.0/8", "10.0.0.0/23", "10.0.0.0/24", "10.0.1.0/24", "10.0.0.7",
         "10.0.0.1-10.0.0.9", "10.0.0.0-10.0.0.255", "192.0.2.0/24", "2001:db8::/32",
         "2001:db8::/64", "2001:db8::1", "2001:db8::1-2001:db8::ff"]
SERVICES = ["", "tcp/22", "tcp/1-1000", "udp/53", "ssh", "tcp", "tcp/22, tcp/80", "dns",
            "tcp/20-25", "tcp/80, tcp/22", "udp", "icmp echo-request", "icmp",
            "icmpv6 echo-request", "tcp/22-22"]


@st.composite
def chains(draw):
    lines = ["input policy drop {"]
    for _ in range(draw(st.integers(1, 12))):
        parts = ["allow", draw(st.sampled_from(SERVICES))]
        for kw in ("from", "to"):
            if draw(st.integers(0, 2)):
                vals = draw(st.lists(st.sampled_from(ADDRS), min_size=1, max_size=3,
                                     unique=True))
                parts.append(kw + " " + ", ".join(vals))
        if draw(st.integers(0, 4)) == 0:
            parts.append("iif " + draw(st.sampled_from(["eth0", "eth+"])))
        lines.append("  " + " ".join(p for p in parts if p))
    return "\n".join(lines) + "\n}\n"


def brute_force(rules):
    out = []
    for i, r in enumerate(rules):
        for c in rules[:i]:
            if covers(c, r):
                out.append((r, c))
                break
    return out


def resolved_rules(text):
    res = Resolver(lambda path: "")
    res.load(text, "p")
    res.finish()
    return res.chains["input"].rules


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(chains())
def test_index_finds_what_comparing_every_rule_finds(text):
    rules = resolved_rules(text)
    assert shadowed(rules) == brute_force(rules)


def test_covered_by_a_union_of_prefixes_and_ranges():
    res = compile_full("input policy drop {\n  allow ssh from 10.0.0.0/24, 10.0.1.0/24\n"
                       "  allow ssh from 10.0.0.0/23\n  allow ssh from 10.0.0.0/8\n"
                       "  allow ssh from 10.1.0.5-10.1.0.9\n  allow ssh from 10.0.0.0/24\n}\n",
                       "p")
    lines = {w.loc.line: w.message for w in res.warnings if "unreachable" in w.message}
    assert lines[3].endswith("rule at line 2")  # two /24s cover the /23
    assert lines[5].endswith("rule at line 4")  # a prefix covers a range
    assert lines[6].endswith("rule at line 2")  # the first covering rule is named
    assert 4 not in lines
