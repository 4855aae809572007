"""`import fwc` is a product: its entry points exist, are documented and work."""

import fwc
from fwc import api, ir


def test_lazy_exports_match_api():
    assert set(fwc.API) == set(api.__all__)
    for name in api.__all__:
        assert getattr(fwc, name) is getattr(api, name)
        assert getattr(api, name).__doc__


def test_translate_and_parse_round_trip():
    text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    rs = fwc.parse(text)
    assert isinstance(rs, ir.Ruleset)
    nft = fwc.translate(text)
    assert "tcp dport 22 accept" in nft
    assert fwc.translate(text, to="iptables")["ip"].count("-A INPUT") == 1


def test_lint_finds_the_missing_established_rule():
    rs = fwc.parse("*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
                   "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", "h.rules")
    found = fwc.lint(rs)
    assert [(f.level, f.code, f.loc.line) for f in found] == [("warning", "no-established", 2)]
    assert isinstance(found[0], fwc.Finding)


def test_cases_with_keys_that_are_not_strings_are_syntax_errors():
    """A library caller's dict may have non-str keys: a located FwcSyntaxError (it was a
    TypeError from sorting the names for the message)."""
    import pytest
    from fwc.errors import FwcSyntaxError
    from fwc.packet import cases_from_json
    with pytest.raises(FwcSyntaxError, match=r"unknown packet field\(s\) 1"):
        cases_from_json([{"probe": {1: 2}}])
    found: list = []
    cases_from_json([{"probe": {}, 3: "x"}], warnings=found)
    assert "case field(s) 3 mean nothing" in found[0].message
