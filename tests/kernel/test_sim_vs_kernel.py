"""The simulator against the real kernel: same rulesets, same cases, same verdict and ct state.

Rulesets are iptables-restore text, loaded into the kernel with iptables-restore and into the
simulator with fwc's iptables front end.  When the two disagree the kernel is right.
"""

from __future__ import annotations

import pytest

from fwc import ir
from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel


def restore(rules=(), policies=("ACCEPT", "ACCEPT", "ACCEPT"), extra="") -> str:
    chains = "".join(f":{c} {p} [0:0]\n" for c, p in zip(("INPUT", "FORWARD", "OUTPUT"), policies))
    return extra + "*filter\n" + chains + "".join(r + "\n" for r in rules) + "COMMIT\n"


def raw(*rules) -> str:
    return ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(r + "\n" for r in rules) + "COMMIT\n")


def nat(*rules) -> str:
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n" + "".join(r + "\n" for r in rules) + "COMMIT\n")


EST = "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
C4, C6 = "198.51.100.7", "2001:db8:a::7"
S4, S6 = "192.0.2.1", "2001:db8:f::1"

# ----------------------------------------------------------------------------- cases


CONNLABEL = (raw("-A PREROUTING -p tcp --dport 22 -j CT --notrack")
             + restore(["-A INPUT -p tcp -m connlabel ! --label 7 --set -m tcp --dport 22 -j REJECT",
                        "-A INPUT -p tcp -m connlabel ! --label 7 --set -j DROP",
                        "-A INPUT -m connlabel --label 7 -m connlabel --label 5 --set -j ACCEPT",
                        "-A INPUT -p udp -m connlabel ! --label 9 -j ACCEPT",
                        "-A INPUT -m connlabel --label 5 -j ACCEPT"], ("DROP", "ACCEPT", "ACCEPT")))


_NB_Q = {"dir": "out", "proto": "udp", "src": S4, "dst": "192.0.2.255", "sport": 40137,
         "dport": 137}
_NB_A = {"dir": "in", "proto": "udp", "src": "192.0.2.77", "dst": S4, "sport": 137,
         "dport": 40137}
NETBIOS_CASES = [
    {"name": "nb-answer", "setup": [_NB_Q], "probe": _NB_A},
    {"name": "nb-two-answers", "setup": [_NB_Q, _NB_A], "probe": dict(_NB_A, src="192.0.2.78")},
    {"name": "nb-other-subnet", "setup": [_NB_Q], "probe": dict(_NB_A, src=C4)},
    {"name": "nb-other-sport", "setup": [_NB_Q], "probe": dict(_NB_A, sport=138)},
    {"name": "nb-unicast-query", "setup": [dict(_NB_Q, dst="192.0.2.77")],
     "probe": dict(_NB_A, src="192.0.2.78")},
]


def tcp_cases(src, dst, tag):
    syn = {"dir": "in", "src": src, "dst": dst, "sport": 40000, "dport": 22, "flags": "S"}
    synack = {"dir": "out", "src": dst, "dst": src, "sport": 22, "dport": 40000, "flags": "SA"}
    ack = dict(syn, flags="A")
    data = dict(syn, flags="PA", payload="hi")
    out_syn = {"dir": "out", "src": dst, "dst": src, "sport": 41000, "dport": 443, "flags": "S"}
    in_synack = {"dir": "in", "src": src, "dst": dst, "sport": 443, "dport": 41000, "flags": "SA"}
    return [
        {"name": f"{tag}-syn22", "probe": syn},
        {"name": f"{tag}-syn23", "probe": dict(syn, dport=23)},
        {"name": f"{tag}-ack22", "probe": ack},
        {"name": f"{tag}-rst22", "probe": dict(syn, flags="R")},
        {"name": f"{tag}-fin22", "probe": dict(syn, flags="FA")},
        {"name": f"{tag}-synfin", "probe": dict(syn, flags="SF")},
        {"name": f"{tag}-noflags", "probe": dict(syn, flags="")},
        {"name": f"{tag}-synack-nocon", "probe": dict(syn, flags="SA")},
        {"name": f"{tag}-handshake", "setup": [syn, synack], "probe": ack},
        {"name": f"{tag}-data", "setup": [syn, synack, ack], "probe": data},
        {"name": f"{tag}-retrans-syn", "setup": [syn], "probe": syn},
        {"name": f"{tag}-out-reply", "setup": [out_syn], "probe": in_synack},
        {"name": f"{tag}-ack-before-synack", "setup": [syn], "probe": ack},
    ]


def udp_icmp_cases(src, dst, tag, v6):
    icmp = "icmpv6" if v6 else "icmp"
    q = {"dir": "out", "proto": "udp", "src": dst, "dst": src, "sport": 5353, "dport": 53}
    a = {"dir": "in", "proto": "udp", "src": src, "dst": dst, "sport": 53, "dport": 5353}
    unreach = {"dir": "in", "proto": icmp, "src": src, "dst": dst,
               "icmp_type": 1 if v6 else 3, "icmp_code": 4 if v6 else 3, "quote": 0}
    echo = {"dir": "in", "proto": icmp, "src": src, "dst": dst,
            "icmp_type": 128 if v6 else 8, "icmp_id": 9}
    echo_out = {"dir": "out", "proto": icmp, "src": dst, "dst": src,
                "icmp_type": 128 if v6 else 8, "icmp_id": 9}
    echo_rep = {"dir": "in", "proto": icmp, "src": src, "dst": dst,
                "icmp_type": 129 if v6 else 0, "icmp_id": 9}
    return [
        {"name": f"{tag}-dns-reply", "setup": [q], "probe": a},
        {"name": f"{tag}-udp-unsolicited", "probe": a},
        {"name": f"{tag}-dns-query", "probe": q},
        {"name": f"{tag}-unreach-related", "setup": [q], "probe": unreach},
        {"name": f"{tag}-unreach-unknown", "setup": [dict(q, dport=54)],
         "probe": dict(unreach, quote=None)},
        {"name": f"{tag}-echo", "probe": echo},
        {"name": f"{tag}-echo-reply", "setup": [echo_out], "probe": echo_rep},
        {"name": f"{tag}-echo-reply-nocon", "probe": echo_rep},
    ]


def fwd_cases(tag):
    syn = {"dir": "fwd", "src": "198.51.100.10", "dst": "203.0.113.10", "sport": 40000,
           "dport": 80, "flags": "S", "iif": "eth0", "oif": "eth1"}
    back = {"dir": "fwd", "src": "203.0.113.10", "dst": "198.51.100.10", "sport": 80,
            "dport": 40000, "flags": "SA", "iif": "eth1", "oif": "eth0"}
    return [
        {"name": f"{tag}-fwd-syn80", "probe": syn},
        {"name": f"{tag}-fwd-syn25", "probe": dict(syn, dport=25)},
        {"name": f"{tag}-fwd-reply", "setup": [syn], "probe": back},
        {"name": f"{tag}-fwd-unsolicited-reply", "probe": back},
        {"name": f"{tag}-fwd-out-syn", "probe": {"dir": "fwd", "src": "203.0.113.10",
                                                 "dst": "198.51.100.10", "sport": 3000,
                                                 "dport": 443, "flags": "S", "iif": "eth1",
                                                 "oif": "eth0"}},
    ]


HOST_CASES = (tcp_cases(C4, S4, "v4") + udp_icmp_cases(C4, S4, "v4", False)
              + [dict(c, name=c["name"]) for c in tcp_cases(C6, S6, "v6")]
              + udp_icmp_cases(C6, S6, "v6", True))

# ----------------------------------------------------------------------------- rulesets

HOST_RULES = [EST, "-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT",
              "-A INPUT -p icmp -j ACCEPT"]
HOST6_RULES = [EST, "-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT",
               "-A INPUT -p ipv6-icmp -j ACCEPT"]
STATE_RULES = [  # mark every state by a distinct verdict
    "-A INPUT -m conntrack --ctstate INVALID -j DROP",
    "-A INPUT -m conntrack --ctstate NEW -p tcp --dport 23 -j REJECT --reject-with tcp-reset",
    "-A INPUT -m conntrack --ctstate NEW -p udp -j REJECT",
]
JUMP_RULES = [
    "-N svc", "-N deny",
    "-A INPUT -p tcp -j svc",
    "-A INPUT -p udp --sport 53 -j ACCEPT",
    "-A INPUT -j deny",
    "-A svc -p tcp --dport 22 -j ACCEPT",
    "-A svc -p tcp --dport 23 -g deny",
    "-A svc -j RETURN",
    "-A deny -p tcp -j REJECT --reject-with tcp-reset",
    "-A deny -j DROP",
]
SCENARIOS = {
    "open": (restore(), restore(), HOST_CASES),
    "host": (restore(HOST_RULES, ("DROP", "ACCEPT", "ACCEPT")),
             restore(HOST6_RULES, ("DROP", "ACCEPT", "ACCEPT")), HOST_CASES),
    "host-noest": (restore(HOST_RULES[1:], ("DROP", "ACCEPT", "ACCEPT")),
                   restore(HOST6_RULES[1:], ("DROP", "ACCEPT", "ACCEPT")), HOST_CASES),
    "states": (restore(STATE_RULES), restore(STATE_RULES), HOST_CASES),
    "jumps": (restore([r for r in JUMP_RULES if not r.startswith("-N")]
                      ).replace("*filter\n", "*filter\n:svc - [0:0]\n:deny - [0:0]\n"),
              None, tcp_cases(C4, S4, "v4") + udp_icmp_cases(C4, S4, "v4", False)),
    "outdrop": (restore([EST, "-A OUTPUT -p tcp --dport 25 -j REJECT --reject-with tcp-reset",
                         "-A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT",
                         "-A OUTPUT -p udp --dport 53 -j ACCEPT"], ("DROP", "DROP", "DROP")),
                None, udp_icmp_cases(C4, S4, "v4", False) + [
                    {"name": "smtp-out", "probe": {"dir": "out", "dport": 25}},
                    {"name": "https-out", "probe": {"dir": "out", "dport": 443}},
                    {"name": "dns-out", "probe": {"dir": "out", "proto": "udp", "dport": 53}}]),
    "notrack": (raw("-A PREROUTING -p tcp --dport 22 -j CT --notrack",
                    "-A OUTPUT -p udp --dport 53 -j CT --notrack")
                + restore(["-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT", EST],
                          ("DROP", "ACCEPT", "ACCEPT")),
                None, tcp_cases(C4, S4, "v4")[:4] + udp_icmp_cases(C4, S4, "v4", False)[:3]),
    # netbios-ns: the host's broadcast query expects answers from any host of the subnet
    "netbios-ns": (raw("-A OUTPUT -p udp --dport 137 -j CT --helper netbios-ns")
                   + restore(["-A INPUT -m conntrack --ctstate RELATED -j LOG",
                              "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"],
                             ("DROP", "ACCEPT", "ACCEPT")),
                   None, NETBIOS_CASES),
    # inverted ranges iptables keeps: xt_udp, xt_length, xt_iprange, xt_conntrack match nothing
    "inverted-ranges": (restore([
        "-A INPUT -p udp -m udp --dport 60:50 -j ACCEPT",
        "-A INPUT -p udp -m udp ! --sport 60:50 -m udp --dport 53 -j ACCEPT",
        "-A INPUT -m length --length 100:50 -j ACCEPT",
        "-A INPUT -m iprange --src-range 10.0.0.9-10.0.0.1 -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 22 -m iprange ! --src-range 10.0.0.9-10.0.0.1 -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 23 -m length ! --length 100:50 -j ACCEPT",
        "-A INPUT -m conntrack --ctproto 6 --ctorigsrcport 60:50 -j ACCEPT"],
        ("DROP", "ACCEPT", "ACCEPT")), None,
        tcp_cases(C4, S4, "v4")[:2] + [dict(tcp_cases(C4, S4, "v4")[0], name="v4-syn24",
                                             probe=dict(tcp_cases(C4, S4, "v4")[0]["probe"],
                                                        dport=24))]
        + udp_icmp_cases(C4, S4, "v4", False)[:3]),
    # xt_connlabel: without a conntrack entry a negated test matches; --set sets, then matches
    "connlabel": (CONNLABEL, None, tcp_cases(C4, S4, "v4")[:4] + tcp_cases(C4, S4, "v4")[8:10]
                  + udp_icmp_cases(C4, S4, "v4", False)[:3]),
    "forward": (restore(["-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                         "-A FORWARD -i eth0 -p tcp --dport 80 -j ACCEPT",
                         "-A FORWARD -i eth1 -j ACCEPT",
                         "-A FORWARD -p tcp --dport 25 -j REJECT"], ("ACCEPT", "DROP", "ACCEPT")),
                None, fwd_cases("f")),
}


def ftp_cases(tag):
    c, srv = C4, S4
    ctl = [{"dir": "in", "src": c, "sport": 40000, "dst": srv, "dport": 21, "flags": "S"},
           {"dir": "out", "src": srv, "sport": 21, "dst": c, "dport": 40000, "flags": "SA"},
           {"dir": "in", "src": c, "sport": 40000, "dst": srv, "dport": 21, "flags": "A"},
           {"dir": "out", "src": srv, "sport": 21, "dst": c, "dport": 40000, "flags": "PA",
            "payload": "220 ready\\r\\n"},
           {"dir": "in", "src": c, "sport": 40000, "dst": srv, "dport": 21, "flags": "PA",
            "payload": "USER ftp\\r\\n"},
           {"dir": "out", "src": srv, "sport": 21, "dst": c, "dport": 40000, "flags": "PA",
            "payload": "331 ok\\r\\n"}]
    port = {"dir": "in", "src": c, "sport": 40000, "dst": srv, "dport": 21, "flags": "PA",
            "payload": "PORT 198,51,100,7,156,64\\r\\n"}
    active = {"dir": "out", "src": srv, "sport": 20, "dst": c, "dport": 40000, "flags": "S"}
    active = dict(active, dport=156 * 256 + 64)
    pasv = {"dir": "out", "src": srv, "sport": 21, "dst": c, "dport": 40000, "flags": "PA",
            "payload": "227 Entering Passive Mode (192,0,2,1,195,80)\\r\\n"}
    passive = {"dir": "in", "src": c, "sport": 40001, "dst": srv, "dport": 195 * 256 + 80,
               "flags": "S"}
    return [
        {"name": f"{tag}-port", "setup": ctl + [port], "probe": active},
        {"name": f"{tag}-pasv", "setup": ctl + [dict(port, payload="PASV\\r\\n"), pasv],
         "probe": passive},
        {"name": f"{tag}-port-first", "setup": ctl[:3] + [port], "probe": active},
        {"name": f"{tag}-pasv-first", "setup": ctl[:3] + [pasv], "probe": passive},
    ]


def tftp_sip_cases(tag):
    rrq = {"dir": "out", "proto": "udp", "src": S4, "sport": 3000, "dst": C4, "dport": 69,
           "payload": "\\x00\\x01file\\x00octet\\x00"}
    data = {"dir": "in", "proto": "udp", "src": C4, "sport": 4500, "dst": S4, "dport": 3000,
            "payload": "\\x00\\x03\\x00\\x01x"}
    invite = {"dir": "in", "proto": "udp", "src": C4, "sport": 5060, "dst": S4, "dport": 5060,
              "payload": "INVITE sip:bob@192.0.2.1 SIP/2.0\\r\\nVia: SIP/2.0/UDP 198.51.100.7\\r\\n"
                         "Content-Type: application/sdp\\r\\n\\r\\nv=0\\r\\n"
                         "c=IN IP4 198.51.100.7\\r\\nm=audio 49170 RTP/AVP 0\\r\\n"}
    rtp = {"dir": "out", "proto": "udp", "src": S4, "sport": 30000, "dst": C4, "dport": 49170}
    good = dict(invite, payload=invite["payload"].replace(
        "Content-Type", "Call-ID: 1@x\\r\\nCSeq: 1 INVITE\\r\\nContent-Type"))
    return [
        {"name": f"{tag}-tftp-data", "setup": [rrq], "probe": data},
        {"name": f"{tag}-tftp-other-port", "setup": [rrq], "probe": dict(data, dport=3001)},
        {"name": f"{tag}-sip-rtp", "setup": [invite], "probe": rtp},
        {"name": f"{tag}-sip-rtcp", "setup": [invite], "probe": dict(rtp, dport=49171)},
        {"name": f"{tag}-sip-other", "setup": [invite], "probe": dict(rtp, dport=49172)},
        {"name": f"{tag}-sip-cseq-rtp", "setup": [good], "probe": rtp},
        {"name": f"{tag}-sip-cseq-rtcp", "setup": [good], "probe": dict(rtp, dport=49171)},
        {"name": f"{tag}-sip-cseq-other", "setup": [good], "probe": dict(rtp, dport=49172)},
    ]


SCENARIOS["ftp-helper"] = (
    raw("-A PREROUTING -p tcp --dport 21 -j CT --helper ftp")
    + restore([EST, "-A INPUT -p tcp --dport 21 -j ACCEPT"], ("DROP", "ACCEPT", "ACCEPT")),
    None, ftp_cases("h"))
SCENARIOS["ftp-nohelper"] = (
    restore([EST, "-A INPUT -p tcp --dport 21 -j ACCEPT"], ("DROP", "ACCEPT", "ACCEPT")),
    None, ftp_cases("n"))
SCENARIOS["tftp-sip"] = (
    raw("-A OUTPUT -p udp --dport 69 -j CT --helper tftp",
        "-A PREROUTING -p udp --dport 5060 -j CT --helper sip")
    + restore([EST, "-A INPUT -p udp --dport 5060 -j ACCEPT"], ("DROP", "ACCEPT", "ACCEPT")),
    None, tftp_sip_cases("t"))
SCENARIOS["tftp-sip-nohelper"] = (restore([EST, "-A INPUT -p udp --dport 5060 -j ACCEPT"],
                                      ("DROP", "ACCEPT", "ACCEPT")), None,
                              tftp_sip_cases("n"))
# A destination NAT that makes a packet local (REDIRECT): an `out` packet comes back in over lo
# through INPUT, a `fwd` one goes to INPUT instead of FORWARD; an ICMP error quoting such a packet
# as it was sent matches no connection (the reply tuple holds the new destination).
_RQ = {"dir": "out", "src": S4, "dst": C4, "sport": 5000, "dport": 53, "flags": "S"}
_RF = {"dir": "fwd", "src": "198.51.100.10", "dst": "203.0.113.10", "sport": 40000,
       "dport": 8080, "flags": "S", "iif": "eth0", "oif": "eth1"}
SCENARIOS["redirect"] = (
    nat("-A OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 1180",
        "-A OUTPUT -p tcp --dport 54 -j REDIRECT --to-ports 1181",
        "-A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 1190")
    + restore(["-A INPUT -i lo -p tcp --dport 1180 -j ACCEPT",
               "-A INPUT -p tcp --dport 1190 -j ACCEPT"], ("DROP", "DROP", "ACCEPT")),
    None, [
        {"name": "r-out-redirected-accepted", "probe": _RQ},
        {"name": "r-out-redirected-dropped", "probe": dict(_RQ, dport=54)},
        {"name": "r-out-not-redirected", "probe": dict(_RQ, dport=55)},
        {"name": "r-fwd-made-local", "probe": _RF},
        {"name": "r-fwd-made-local-dropped", "probe": dict(_RF, dport=8081)},
        {"name": "r-icmp-about-redirected", "setup": [_RQ],
         "probe": {"dir": "in", "proto": "icmp", "src": C4, "dst": S4, "icmp_type": 3,
                   "icmp_code": 3, "quote": 0}},
    ])
# Other NAT is not compared here (covered by test_nat_kernel.py and test_conntrack.py).

# ICMP the kernel treats by type: every ICMPv6 type below 128 is an error (RELATED when it
# quotes a flow), a redirect is not ND (INVALID, and answered by REJECT), MRD adverts and
# solicitations are never tracked; REJECT sends no error about ICMP types it discards or does
# not know (1, 2, 6, 7, 9, 10, above 18).  A SYN from the server in TIME_WAIT reopens the
# connection the other way round.  A UDP-Lite packet from outside fails conntrack's checksum
# test, which uses UDP's pseudo-header.
_U6 = {"dir": "out", "proto": "udp", "src": S6, "dst": C6, "sport": 41000, "dport": 53}


def _i6(t, **k):
    return dict({"dir": "in", "proto": "icmpv6", "src": C6, "dst": S6, "icmp_type": t}, **k)


def _i4(t):
    return {"dir": "in", "proto": "icmp", "src": C4, "dst": S4, "icmp_type": t}


def _ci(f):
    return {"dir": "in", "src": C4, "dst": S4, "sport": 40000, "dport": 22, "flags": f}


def _so(f):
    return {"dir": "out", "src": S4, "dst": C4, "sport": 22, "dport": 40000, "flags": f}


_CLOSED = [_ci("S"), _so("SA"), _ci("A"), _ci("FA"), _so("A"), _so("FA"), _ci("A")]
SCENARIOS["icmp-types"] = (
    restore(["-A INPUT -p icmp -j REJECT"]), restore(["-A INPUT -p ipv6-icmp -j REJECT"]),
    [{"name": f"v6-error-{t}-quoting", "setup": [_U6], "probe": _i6(t, quote=0)}
     for t in (0, 5, 100, 127)]
    + [{"name": f"v6-type-{t}", "probe": _i6(t)} for t in (137, 151, 152, 153)]
    + [{"name": f"v4-type-{t}", "probe": _i4(t)} for t in (0, 1, 6, 9, 10, 13, 18, 19, 42)]
    + [{"name": "tw-reply-syn", "setup": _CLOSED, "probe": _so("S")},
       {"name": "tw-reply-syn-then-synack", "setup": _CLOSED + [_so("S")], "probe": _ci("SA")},
       {"name": "udplite-in", "probe": {"dir": "in", "proto": "udplite", "src": C4, "dst": S4,
                                        "sport": 5000, "dport": 6000}}])


def _ruleset(v4, v6) -> ir.Ruleset:
    tables = list(parse_iptables_save(v4, "v4.rules", "ip").tables)
    if v6:
        tables += parse_iptables_save(v6, "v6.rules", "ip6").tables
    return ir.Ruleset(tuple(tables))


PARAMS = [(name, i) for name, (_v4, _v6, cases) in SCENARIOS.items() for i in range(len(cases))]


@pytest.fixture(scope="module")
def harness():
    kernel_or_skip()
    with KernelHarness() as h:
        yield h


@pytest.fixture(scope="module")
def kernel_results(harness):
    """Every scenario's cases run once through the kernel: {(scenario, index): CaseResult}."""
    out = {}
    for name, (v4, v6, cases) in SCENARIOS.items():
        v6 = v6 or restore()
        harness.load_iptables(v4, v6)
        for i, res in enumerate(harness.run_cases(cases_from_json(cases))):
            out[(name, i)] = res
    return out


@pytest.mark.parametrize("scenario,index", PARAMS, ids=[f"{n}-{SCENARIOS[n][2][i]['name']}"
                                                        for n, i in PARAMS])
def test_simulator_agrees_with_kernel(kernel_results, scenario, index):
    v4, v6, cases = SCENARIOS[scenario]
    case = cases_from_json([cases[index]])[0]
    sim = Simulator(_ruleset(v4, v6 or restore()), SimOptions())
    mine = sim.run_case(case)
    theirs = kernel_results[(scenario, index)]
    assert (mine.setup_verdicts, mine.verdict, mine.ct_state) == \
           (theirs.setup_verdicts, theirs.verdict, theirs.ct_state)


def test_tcp_loose_zero_agrees():
    kernel_or_skip()
    v4 = restore(HOST_RULES, ("DROP", "ACCEPT", "ACCEPT"))
    cases = cases_from_json(tcp_cases(C4, S4, "v4"))
    with KernelHarness(tcp_loose=False) as h:
        h.load_iptables(v4, restore())
        theirs = h.run_cases(cases)
    sim = Simulator(_ruleset(v4, None), SimOptions(tcp_loose=False))
    mine = [sim.run_case(c) for c in cases]
    assert [(r.name, r.verdict, r.ct_state) for r in mine] == \
           [(r.name, r.verdict, r.ct_state) for r in theirs]


@pytest.mark.parametrize("restore_line,mark", [
    # xt_CONNMARK: mark = (mark & ~nfmask) ^ (ctmark & ctmask): 0xf000 ^ 0x1234, not 0xf000 | ...
    ("-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xffff", 0xE234),
    ("-A PREROUTING -j CONNMARK --restore-mark", 0x1234),
])
def test_masked_restore_mark_is_an_xor(kernel, restore_line, mark):
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -j CONNMARK --set-mark 0x1234\n-A PREROUTING -j MARK --set-mark 0xf0f0\n"
            f"{restore_line}\nCOMMIT\n"
            + restore([f"-A INPUT -p tcp -m mark --mark {mark:#x} -j DROP"]))
    cases = cases_from_json([{"name": "p", "probe": {
        "dir": "in", "iif": "eth0", "src": C4, "dst": S4, "sport": 1000, "dport": 80,
        "flags": "S"}}])
    from fwc.backends.simulate import simulate
    from fwc.testing.compare import kernel_verdicts
    from fwc.testing.kernel import sim_options
    kernel.prepare(cases)
    got = [r.verdict for r in kernel_verdicts(("iptables", text, None), cases, kernel)]
    assert got == ["DROP"]
    rs = parse_iptables_save(text, "cm.rules", "ip")
    assert [r.verdict for r in simulate(rs, cases, sim_options())] == got


MARK_OPS = ["-j MARK --set-mark 0x0f0f/0x00ff", "-j MARK --set-xmark 0x0f0f/0x00ff",
            "-j MARK --and-mark 0x0ff0", "-j MARK --or-mark 0x000f", "-j MARK --xor-mark 0x00ff",
            "-j CONNMARK --set-mark 0x0f0f/0x00ff", "-j CONNMARK --set-xmark 0x0f0f/0x00ff",
            "-j CONNMARK --and-mark 0x0ff0", "-j CONNMARK --or-mark 0x000f",
            "-j CONNMARK --xor-mark 0x00ff", "-j CONNMARK --save-mark --mask 0x0ff0",
            "-j CONNMARK --restore-mark --mask 0x0ff0",
            "-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf0f0",
            "-j CONNMARK --restore-mark --nfmask 0xf0f0 --ctmask 0xff",
            # xt_CONNMARK revision 2: set mode shifts the new ctmark, save/restore the source
            "-j CONNMARK --set-mark 0x23/0x42 --right-shift-mark 5",
            "-j CONNMARK --set-xmark 0x0f0f/0x00ff --left-shift-mark 4",
            "-j CONNMARK --xor-mark 0x00ff --right-shift-mark 31",
            "-j CONNMARK --save-mark --nfmask 0xff00 --left-shift-mark 20",
            "-j CONNMARK --save-mark --mask 0xfff0 --right-shift-mark 4",
            "-j CONNMARK --restore-mark --ctmask 0xff00 --right-shift-mark 8",
            "-j CONNMARK --restore-mark --mask 0x0ff0 --left-shift-mark 1"]


@pytest.mark.parametrize("op", MARK_OPS)
def test_mark_arithmetic_agrees_with_the_kernel(kernel_module, op):
    """From packet mark 0x1234 and ct mark 0xabcd, each MARK/CONNMARK form: the marks the
    simulator computes are the kernel's (a filter rule drops the packet unless both are)."""
    import re
    from fwc.testing.compare import kernel_verdicts
    from fwc.testing.kernel import sim_options
    head = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -j CONNMARK --set-mark 0xabcd\n-A PREROUTING -j MARK --set-mark 0x1234\n"
            f"-A PREROUTING {op}\nCOMMIT\n")
    cases = cases_from_json([{"name": "p", "probe": {
        "dir": "in", "iif": "eth0", "src": C4, "dst": S4, "sport": 1000, "dport": 80,
        "flags": "S"}}])
    sim = Simulator(parse_iptables_save(head, "m.rules", "ip"), sim_options())
    res = sim.run_case(cases[0])
    ((entry, _),) = {id(e): (e, d) for e, d in sim.conntrack.entries.values()}.values()
    marks = [re.search(r"meta mark set (0x[0-9a-f]+)", t["action"]) for t in res.trace]
    mark = int([m for m in marks if m][-1].group(1), 16)
    text = head + restore([f"-A INPUT -m connmark ! --mark {entry.mark:#x} -j DROP",
                           f"-A INPUT -m mark ! --mark {mark:#x} -j DROP"])
    kernel_module.prepare(cases)
    assert [r.verdict for r in kernel_verdicts(("iptables", text, None), cases,
                                               kernel_module)] == ["ACCEPT"], (op, mark, entry.mark)
    # and fwc's nft output, where nft can say the form (not a masked save/restore target)
    from fwc.backends.nft import emit_nft
    from fwc.errors import ErrorGroup
    try:
        nft = emit_nft(parse_iptables_save(text, "m.rules", "ip"))
    except ErrorGroup as e:
        assert "with a mask" in str(e.errors[0]), op
        return
    assert [r.verdict for r in kernel_verdicts(("nft", nft), cases, kernel_module)] == \
        ["ACCEPT"], (op, nft)


def test_connlabel_fwc_nft_agrees_with_xt_connlabel(harness):
    """The nft form of every connlabel flavour (the negated ones take a chain of their own, so
    packets without a conntrack entry still match) gives the kernel's xt_connlabel verdicts."""
    from fwc.backends.nft import emit_nft
    from fwc.testing.compare import kernel_verdicts
    v4, _, cases = SCENARIOS["connlabel"]
    cases = cases_from_json(cases)
    harness.prepare(cases)
    xt = kernel_verdicts(("iptables", v4, restore()), cases, harness)
    nft = kernel_verdicts(("nft", emit_nft(_ruleset(v4, None))), cases, harness)
    assert [(r.name, r.verdict, r.ct_state) for r in nft] == \
        [(r.name, r.verdict, r.ct_state) for r in xt]
    assert {r.verdict for r in xt} >= {"REJECT", "ACCEPT"}


def test_nft_ct_mark_read_stops_the_rule_without_conntrack(harness):
    """nft's `meta mark set ct mark accept`: for an untracked packet the ct mark read stops the
    rule, so the accept does not run (the chain's drop policy decides); the nft front end says
    so with a 'has conntrack' match, and the simulator agrees with the kernel."""
    from fwc.frontends.nft import parse_nft
    from fwc.testing.compare import kernel_verdicts
    text = ("table ip raw {\n chain pre {\n  type filter hook prerouting priority raw;\n"
            "  tcp dport 22 notrack\n }\n}\n"
            "table ip filter {\n chain input {\n  type filter hook input priority filter; "
            "policy drop;\n  meta mark set ct mark accept\n }\n}\n")
    cases = cases_from_json(tcp_cases(C4, S4, "v4")[:2])  # syn22 untracked, syn23 tracked
    harness.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, harness)
    sim = Simulator(parse_nft(text, "cm.nft"), SimOptions()).run_case
    assert [(r.verdict, r.ct_state) for r in kern] == [("DROP", "UNTRACKED"), ("ACCEPT", "NEW")]
    assert [(sim(c).verdict, sim(c).ct_state) for c in cases] == \
        [(r.verdict, r.ct_state) for r in kern]


def test_inverted_ranges_fwc_nft_agrees_with_iptables(harness):
    """Ranges with min > max that iptables keeps (udp ports, length, iprange, conntrack ports)
    match no packet in the kernel; fwc's nft output says so (and negated: every packet)."""
    from fwc.backends.nft import emit_nft
    from fwc.testing.compare import kernel_verdicts
    v4, _, cases = SCENARIOS["inverted-ranges"]
    cases = cases_from_json(cases)
    harness.prepare(cases)
    xt = kernel_verdicts(("iptables", v4, restore()), cases, harness)
    nft = kernel_verdicts(("nft", emit_nft(_ruleset(v4, None))), cases, harness)
    assert [(r.name, r.verdict) for r in nft] == [(r.name, r.verdict) for r in xt]
    assert {r.verdict for r in xt} == {"ACCEPT", "DROP"}


def test_inet_family_reject_applies_to_its_family_only(harness):
    """firewalld writes `ip6 daddr {...} reject with icmpv6 addr-unreachable` and plain
    `reject with icmp ...` in inet tables: nft tests the packet family first, so the other
    family's packets go on to the next rule.  The front end says so with a `meta nfproto`
    match; the simulator and fwc's nft output agree with the kernel."""
    from fwc.backends.nft import emit_nft
    from fwc.frontends.nft import parse_nft
    from fwc.testing.compare import kernel_verdicts
    text = ("table inet filter {\n chain input {\n  type filter hook input priority filter; "
            "policy drop;\n  tcp dport 22 reject with icmp host-prohibited\n"
            "  limit rate 1/minute burst 1 packets reject with icmpv6 admin-prohibited\n"
            "  accept\n }\n}\n")
    v6 = tcp_cases(C6, S6, "v6")
    # the limit's one token goes to v6-syn22 (rejected): the IPv4 cases before it took none,
    # as the family test comes before the limit; v6-twice then finds none left
    cases = cases_from_json(tcp_cases(C4, S4, "v4")[:2] + [v6[0], dict(
        v6[1], name="v6-twice", setup=[dict(v6[0]["probe"], sport=40001)])])
    harness.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, harness)
    rs = parse_nft(text, "fam.nft")
    ours = kernel_verdicts(("nft", emit_nft(rs)), cases, harness)
    assert [(r.setup_verdicts, r.verdict) for r in kern] == \
        [((), "REJECT"), ((), "ACCEPT"), ((), "REJECT"), (("ACCEPT",), "ACCEPT")]
    assert [(r.setup_verdicts, r.verdict) for r in ours] == \
        [(r.setup_verdicts, r.verdict) for r in kern]
    # the simulator takes every limit to be within its rate (no token buckets): compared on
    # the cases that meet the limit at most once
    sim = Simulator(rs, SimOptions())
    assert [sim.run_case(c).verdict for c in cases[:3]] == [r.verdict for r in kern[:3]]


def test_no_icmpv6_error_from_an_ipv4_mapped_address(harness):
    """A reject answering a packet to one of the host's own IPv4-mapped addresses
    (::ffff:a.b.c.d) would send the ICMPv6 error from it; IPv6 routing refuses that source
    towards an ordinary address, so no error leaves and the packet reads as dropped."""
    from fwc.frontends.nft import parse_nft
    from fwc.testing.compare import kernel_verdicts
    text = "table ip6 t {\n chain input {\n  type filter hook input priority filter;\n  reject\n }\n}\n"
    udp = {"dir": "in", "proto": "udp", "src": C6, "sport": 5000, "dport": 9}
    cases = cases_from_json([{"name": "mapped", "probe": dict(udp, dst="::ffff:0:1")},
                             {"name": "plain", "probe": dict(udp, dst=S6)}])
    harness.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, harness)
    sim = Simulator(parse_nft(text, "m.nft"), SimOptions()).run_case
    assert [r.verdict for r in kern] == ["DROP", "REJECT"]
    assert [sim(c).verdict for c in cases] == [r.verdict for r in kern]


def test_nft_set_statement_without_its_key_stops_the_rule(harness):
    """`add @s { ip saddr } drop` in an inet table: an IPv6 packet has no `ip saddr`, so nft
    stops the rule there (the drop does not run); the simulator does the same and keeps the
    added IPv4 address for the rest of the case."""
    from fwc.frontends.nft import parse_nft
    from fwc.testing.compare import kernel_verdicts
    text = ("table inet t {\n set s {\n  type ipv4_addr\n  flags dynamic\n }\n chain input {\n"
            "  type filter hook input priority filter;\n  ip saddr @s reject\n"
            "  tcp dport 22 add @s { ip saddr } drop\n }\n}\n")
    v4, v6 = tcp_cases(C4, S4, "v4"), tcp_cases(C6, S6, "v6")
    cases = cases_from_json([v6[0], {"name": "v4-twice", "setup": [v4[0]["probe"]],
                                     "probe": dict(v4[0]["probe"], sport=40009)}])
    harness.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, harness)
    sim = Simulator(parse_nft(text, "s.nft"), SimOptions()).run_case
    assert [(r.setup_verdicts, r.verdict) for r in kern] == [((), "ACCEPT"),
                                                            (("DROP",), "REJECT")]
    assert [(sim(c).setup_verdicts, sim(c).verdict) for c in cases] == \
        [(r.setup_verdicts, r.verdict) for r in kern]


@pytest.mark.parametrize("rule", ["-p tcp --tcp-option 2", "-p tcp ! --tcp-option 2",
                                  "-p tcp ! --tcp-option 23", "-p tcp -m tcpmss ! --mss 1:1000"])
def test_tcp_options_as_the_harness_sends_them(rule):
    """The harness's segments carry no TCP options, not even a SYN's MSS: the simulator gave
    SYNs an MSS for `--tcp-option 2` (DROP where the kernel accepted); fwc's nft agrees too."""
    from fwc.backends.nft import emit_nft
    from fwc.testing.compare import kernel_verdicts
    from fwc.testing.kernel import sim_options
    kernel_or_skip()
    text = f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {rule} -j DROP\nCOMMIT\n"
    rs = parse_iptables_save(text, "o.rules", "ip")
    cases = cases_from_json([
        {"name": "syn", "probe": {"dport": 22, "flags": "S"}},
        {"name": "ack", "probe": {"dport": 22, "flags": "A"}},
        {"name": "udp", "probe": {"proto": "udp", "dport": 22}}])
    with KernelHarness() as h:
        h.prepare(cases)
        kern = kernel_verdicts(("iptables", text, None), cases, h)
        ours = kernel_verdicts(("nft", emit_nft(rs)), cases, h)
    sim = Simulator(rs, sim_options())
    want = ["DROP", "DROP", "ACCEPT"] if "!" in rule else ["ACCEPT", "ACCEPT", "ACCEPT"]
    assert [r.verdict for r in kern] == want
    assert [r.verdict for r in ours] == want
    assert [sim.run_case(c).verdict for c in cases] == want
