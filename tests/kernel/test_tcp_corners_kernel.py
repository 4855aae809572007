"""TCP conntrack corners where the simulator once disagreed with the kernel (6.18):

- a tcp-reset REJECT moves the connection's entry to CLOSE with its 10 s timeout
  (nf_send_reset -> nf_ct_set_closing), so a later `--ctexpire` reads it, and FINs after it
  no longer pass through FIN_WAIT (so a new SYN from the same port is no reopen);
- a simultaneous open (SYN both ways, then SYN/ACK) is established, and assured, by the
  responder's ACK, which the state table alone would leave in SYN_RECV.

Each case asserts the kernel's answer (so the test cannot pass with both sides wrong) and
that the simulator gives the same."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import simulate
from fwc.frontends import parse_text
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

C, S = "198.51.100.7", "192.0.2.1"


def cin(flags, **kw):
    return {"dir": "in", "src": C, "dst": S, "proto": "tcp", "sport": 40000, "dport": 22,
            "flags": flags, **kw}


def sout(flags, **kw):
    return {"dir": "out", "src": S, "dst": C, "proto": "tcp", "sport": 22, "dport": 40000,
            "flags": flags, **kw}


HANDSHAKE = [cin("S"), sout("SA"), cin("A")]


def filt(*rules):
    return ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(r + "\n" for r in rules) + "COMMIT\n")


CASES = [
    # the SYN/ACK is rejected in OUTPUT; the client's ACK then finds an entry with <= 10 s left
    ("iptables", filt("-A INPUT -p tcp -m conntrack --ctstate ESTABLISHED --ctexpire 0:10 -j DROP",
                      "-A OUTPUT -p tcp --tcp-flags SYN,ACK SYN,ACK -j REJECT --reject-with tcp-reset"),
     {"name": "reset-closes", "setup": [cin("S"), sout("SA")], "probe": cin("A")},
     (("ACCEPT", "REJECT"), "DROP", "ESTABLISHED")),
    # a rejected data segment, a normal close, then a SYN from the same port: no reopen
    ("iptables", filt("-A INPUT -p tcp -m length --length 41 -j REJECT --reject-with tcp-reset"),
     {"name": "no-reopen-after-reset", "setup": HANDSHAKE + [
         cin("PA", payload="x"), cin("FA"), sout("FA"), cin("A")], "probe": cin("S")},
     (("ACCEPT",) * 3 + ("REJECT",) + ("ACCEPT",) * 3, "ACCEPT", "ESTABLISHED")),
    ("nft", "table inet f {\n chain input {\n  type filter hook input priority filter; "
            "policy accept;\n  meta l4proto tcp ct state established ct expiration < 11s drop\n"
            "  meta length 41 reject with tcp reset\n }\n}\n",
     {"name": "nft-reset-closes", "setup": HANDSHAKE + [cin("PA", payload="x")],
      "probe": cin("PA", payload="yy")},
     (("ACCEPT",) * 3 + ("REJECT",), "DROP", "ESTABLISHED")),
    # a reset for the first packet: its entry is not confirmed, so nothing is closed
    ("iptables", filt("-A INPUT -p tcp -m conntrack --ctstate NEW -m length --length 40 "
                      "-j REJECT --reject-with tcp-reset",
                      "-A INPUT -p tcp -m conntrack --ctstate NEW -j DROP"),
     {"name": "reset-of-unconfirmed", "setup": [cin("S")], "probe": cin("S", payload="x")},
     (("REJECT",), "DROP", "NEW")),
    # simultaneous open: the responder's ACK establishes and assures the entry
    ("iptables", filt("-A OUTPUT -p tcp -m conntrack --ctstatus ASSURED -j DROP"),
     {"name": "simultaneous-open", "setup": [cin("S"), sout("S"), cin("SA")],
      "probe": sout("A")},
     (("ACCEPT",) * 3, "DROP", "ESTABLISHED")),
    ("iptables", filt("-A INPUT -p tcp -m conntrack --ctstatus ASSURED -j DROP"),
     {"name": "simultaneous-open-then-data", "setup": [cin("S"), sout("S"), cin("SA"),
                                                       sout("A")],
      "probe": cin("PA", payload="x")},
     (("ACCEPT",) * 4, "DROP", "ESTABLISHED")),
]


@pytest.mark.parametrize("loader, text, case, want", CASES, ids=[c[2]["name"] for c in CASES])
def test_tcp_corner_agrees_with_kernel(kernel, loader, text, case, want):
    cases = cases_from_json([case])
    rs = parse_text(text, "corner", loader)
    (sim,) = simulate(rs, cases, sim_options())
    kernel.prepare(cases)
    (got,) = kernel_verdicts((loader, text), cases, kernel)
    assert (tuple(got.setup_verdicts), got.verdict, got.ct_state) == want
    assert (tuple(sim.setup_verdicts), sim.verdict, sim.ct_state) == want


# ------------------------------------------------------------------ ICMP redirects and NAT

IN4, E1 = "203.0.113.10", "203.0.113.1"


def nat(*rules):
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n" + "".join(r + "\n" for r in rules) + "COMMIT\n")


_FLOW = {"dir": "fwd", "src": C, "dst": IN4, "proto": "udp", "sport": 40000, "dport": 53,
         "iif": "eth0", "oif": "eth1"}
_REDIRECT_IN = {"dir": "in", "proto": "icmp", "src": IN4, "dst": E1, "icmp_type": 5,
                "icmp_code": 1, "quote": 0, "iif": "eth1"}
REDIRECTS = [
    # nf_nat_icmp_reply_translation drops a redirect about a NATed connection, at any hook
    # of a family with a nat chain (nft registers all four NAT hooks with the first chain)
    ("iptables", nat("-A POSTROUTING -o eth1 -j MASQUERADE"),
     {"name": "redirect-masqueraded", "setup": [_FLOW], "probe": _REDIRECT_IN}, "DROP"),
    ("nft", "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; "
            "policy accept;\n  oifname \"eth1\" masquerade\n }\n}\n",
     {"name": "nft-redirect-masqueraded", "setup": [_FLOW], "probe": _REDIRECT_IN}, "DROP"),
    ("iptables", nat(f"-A PREROUTING -i eth0 -d {S} -j DNAT --to-destination {IN4}"),
     {"name": "redirect-dnatted", "setup": [dict(_FLOW, dir="in", dst=S, oif=None)],
      "probe": {"dir": "fwd", "proto": "icmp", "src": IN4, "dst": C, "icmp_type": 5,
                "icmp_code": 1, "quote": 0, "iif": "eth1", "oif": "eth0"}}, "DROP"),
    # a null binding only: the redirect goes through, as do other errors about NATed flows
    ("iptables", nat("-A POSTROUTING -o eth1 -p tcp -j MASQUERADE"),
     {"name": "redirect-null-binding", "setup": [_FLOW],
      "probe": dict(_REDIRECT_IN, dst=C, dir="fwd", oif="eth0")}, "ACCEPT"),
    ("iptables", nat("-A POSTROUTING -o eth1 -j MASQUERADE"),
     {"name": "unreachable-masqueraded", "setup": [_FLOW],
      "probe": dict(_REDIRECT_IN, icmp_type=3, icmp_code=3)}, "ACCEPT"),
]


@pytest.mark.parametrize("loader, text, case, want", REDIRECTS,
                         ids=[c[2]["name"] for c in REDIRECTS])
def test_icmp_redirect_about_a_nat_connection_agrees_with_kernel(kernel, loader, text, case,
                                                                 want):
    case = {**case, "setup": [{k: v for k, v in p.items() if v is not None}
                              for p in case["setup"]]}
    cases = cases_from_json([case])
    (sim,) = simulate(parse_text(text, "redirect", loader), cases, sim_options())
    kernel.prepare(cases)
    (got,) = kernel_verdicts((loader, text), cases, kernel)
    assert (got.verdict, got.ct_state) == (want, "RELATED")
    assert (sim.verdict, sim.ct_state) == (want, "RELATED")
