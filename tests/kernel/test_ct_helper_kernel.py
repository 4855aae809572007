"""Conntrack helpers as the kernel has them: xt_CT refuses a helper name it does not know, a
rule without the helper's protocol and a family the helper is not registered for (irc, pptp,
snmp, netbios-ns are IPv4 only); nft's `ct helper set` does nothing before conntrack (no entry
to set it on), unlike iptables' raw-table template."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import simulate
from fwc.errors import ErrorGroup
from fwc.frontends.iptables import parse_iptables_save
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing import netns
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

HELPERS = ("ftp", "tftp", "sip", "irc", "snmp", "netbios-ns", "pptp", "Q.931", "RAS", "sane",
           "amanda", "h323", "nosuch")


def test_fwc_refuses_the_ct_helper_rules_the_kernel_refuses(kernel_ok):
    ns = "fwc-helpers"
    netns.delete(ns)
    netns.create(ns)
    try:
        for name in HELPERS:
            for proto in ("-p tcp ", "-p udp ", ""):
                for family, tool in (("ip", "iptables-restore"), ("ip6", "ip6tables-restore")):
                    text = (f"*raw\n:PREROUTING ACCEPT [0:0]\n"
                            f"-A PREROUTING {proto}-j CT --helper {name}\nCOMMIT\n")
                    loaded = netns.run([tool], input=text, check=False, ns=ns).returncode == 0
                    try:
                        parse_iptables_save(text, "h.rules", family)
                        ours = True
                    except ErrorGroup as e:
                        assert e.errors[0].loc.line == 3, e.format()
                        ours = False
                    assert ours == loaded, (name, proto, family, loaded)
    finally:
        netns.delete(ns)


def _nft(priority: str) -> str:
    return f"""table ip h {{
 ct helper ftp-std {{ type "ftp" protocol tcp; }}
 chain pre {{
  type filter hook prerouting priority {priority}; policy accept;
  tcp dport 21 ct helper set "ftp-std"
 }}
 chain out {{
  type filter hook output priority filter; policy accept;
  ct state related ct helper "ftp" drop
 }}
}}
"""


@pytest.mark.parametrize("priority", ["raw", "-250", "-199", "filter"])
def test_nft_ct_helper_set_before_conntrack_does_nothing(kernel, priority):
    """The client outside opens FTP to the firewall and sends PORT; the server's active data
    SYN back is RELATED only when the helper was set (the output chain then drops it)."""
    client, server = "198.51.100.7", "192.0.2.1"
    c = {"dir": "in", "src": client, "dst": server, "sport": 40000, "dport": 21}
    s = {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": 40000}
    setup = [dict(c, flags="S"), dict(s, flags="SA"), dict(c, flags="A"),
             dict(s, flags="PA", payload="220 ready\\r\\n"),
             dict(c, flags="PA", payload="USER a\\r\\n"),
             dict(s, flags="PA", payload="331 pw\\r\\n"),
             dict(c, flags="PA", payload="PORT 198,51,100,7,156,64\\r\\n")]
    # the active data connection PORT announced: the server (here the firewall) to 40000
    probe = {"dir": "out", "src": server, "dst": client, "sport": 20, "dport": 40000,
             "flags": "S"}
    text = _nft(priority)
    cases = cases_from_json([{"name": "data", "setup": setup, "probe": probe}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, kernel)
    sim = simulate(parse_nft(text, "h.nft"), cases, sim_options())
    before = priority in ("raw", "-250")
    assert (kern[0].ct_state, kern[0].verdict) == (("NEW", "ACCEPT") if before
                                                   else ("RELATED", "DROP"))
    assert (sim[0].ct_state, sim[0].verdict) == (kern[0].ct_state, kern[0].verdict)
