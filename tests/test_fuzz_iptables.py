"""Mutated corpus lines never crash the iptables front end: a ruleset or a located error."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from tests.corpus import real_world_files

LINES = [line for p in real_world_files() for line in p.read_text().splitlines()
         if line.startswith("-A")] or ["-A INPUT -p tcp --dport 22 -j ACCEPT"]
TOKENS = ["!", "-p", "-s", "-m", "-j", "--dport", "tcp", "999999", "1.2.3.4/33", "::1", "-g",
          "\"", "'", "\\", "$X", "--ctstate", "FOO", ":", ",", "-A", "*nat", "COMMIT", "\x00", "é",
          "0x", "-", "--to", "/", "[1:2]", "{", "}", ";", "`"]


@st.composite
def mutated(draw):
    lines = draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=4))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    out = []
    for line in lines:
        words = line.split(" ")
        for _ in range(draw(st.integers(0, 3))):
            op = rnd.choice(("drop", "dup", "insert", "swap", "cut"))
            i = rnd.randrange(len(words))
            if op == "drop" and len(words) > 1:
                del words[i]
            elif op == "dup":
                words.insert(i, words[i])
            elif op == "insert":
                words.insert(i, rnd.choice(TOKENS))
            elif op == "swap":
                j = rnd.randrange(len(words))
                words[i], words[j] = words[j], words[i]
            elif op == "cut":
                words[i] = words[i][: rnd.randrange(len(words[i]) + 1)]
        out.append(" ".join(words))
    chains = ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    commit = "COMMIT\n" if draw(st.booleans()) else ""
    return "*filter\n" + chains + "\n".join(out) + "\n" + commit


def _check(parse, text):
    try:
        parse(text)
    except ErrorGroup as g:
        assert g.errors
        for e in g.errors:
            assert e.loc.file == "fuzz" and e.loc.line >= 1 and e.message
    except FwcError as e:
        assert e.loc.file == "fuzz" and e.loc.line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_save_files_give_ruleset_or_located_error(text):
    _check(lambda t: parse_iptables_save(t, "fuzz"), text)


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_mutated_scripts_give_ruleset_or_located_error(text):
    script = "\n".join("iptables " + line for line in text.splitlines() if line.startswith("-A"))
    _check(lambda t: parse_iptables_script(t, "fuzz"), script or "iptables -A")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data):
    text = data.decode("utf-8", "replace")
    _check(lambda t: parse_iptables_save(t, "fuzz"), text)
