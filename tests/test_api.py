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
