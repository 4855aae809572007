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


def test_a_lone_surrogate_is_a_located_syntax_error():
    """A str from bytes decoded with errors="surrogateescape": it raised UnicodeEncodeError."""
    import pytest
    from fwc.errors import FwcSyntaxError
    for call, text in [
            (fwc.parse, '*filter\n-A INPUT -m comment --comment "a\ud800" -j DROP\nCOMMIT\n'),
            (fwc.translate, "*filter\n-A INPUT -m comment --comment \"a\udcff\" -j DROP\nCOMMIT\n"),
            (fwc.compile_policy, "input policy drop {\n  allow ssh\n}\nhost \ud800 = 192.0.2.1\n")]:
        with pytest.raises(FwcSyntaxError, match="lone surrogate") as ei:
            call(text)
        i = next(k for k, c in enumerate(text) if "\ud800" <= c <= "\udfff")
        assert (ei.value.loc.line, ei.value.loc.col) == (
            text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)), call


def test_library_arguments_are_checked_as_the_cli_checks_them(tmp_path):
    """include_dirs=None is no include directory (it was a TypeError); a family other than
    ip/ip6 is refused (it was taken); a table name nft cannot parse is refused as --table
    refuses it (the library renamed it c_1_bad__flush_ruleset)."""
    import pytest
    from fwc.errors import FwcSyntaxError
    from fwc.frontends.nft import parse_nft
    (tmp_path / "a.nft").write_text("table ip t { chain c { } }\n")
    rs = parse_nft('include "a.nft"\n', str(tmp_path / "m.nft"), include_dirs=None)
    assert [t.name for t in rs.tables] == ["t"]
    text = "*filter\n-A INPUT -j DROP\nCOMMIT\n"
    with pytest.raises(FwcSyntaxError, match="family 'ip7': expected ip or ip6"):
        fwc.parse(text, family="ip7")
    for bad in ("1 bad; flush ruleset", "table", "x" * 256):
        with pytest.raises(FwcSyntaxError, match="not a table name nft accepts"):
            fwc.translate(text, table=bad)
        with pytest.raises(FwcSyntaxError, match="not a table name nft accepts"):
            fwc.emit_nft(fwc.parse(text), table=bad)
    assert "table ip fw {" in fwc.translate(text, table="fw")
