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
    text = _nft(priority)
    # the active data connection PORT announced: the server (here the firewall) to 40000
    cases = cases_from_json([_ftp_case("data")])
    kernel.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, kernel)
    sim = simulate(parse_nft(text, "h.nft"), cases, sim_options())
    before = priority in ("raw", "-250")
    assert (kern[0].ct_state, kern[0].verdict) == (("NEW", "ACCEPT") if before
                                                   else ("RELATED", "DROP"))
    assert (sim[0].ct_state, sim[0].verdict) == (kern[0].ct_state, kern[0].verdict)


def _ftp_case(name: str) -> dict:
    """PORT from the client outside to the firewall's server; the probe: its data SYN."""
    return _ftp_variant_case(name, "PORT 198,51,100,7,156,64\\r\\n", None, 40000)


@pytest.mark.parametrize("first,second", [
    ("--helper ftp", "--zone 1"), ("--helper ftp", "--notrack"), ("--helper sip", "--helper ftp"),
    ("--notrack", "--helper ftp"), ("--zone 1", "--helper ftp"), ("--helper ftp --zone 1", None)])
def test_the_first_ct_target_a_packet_meets_wins(kernel, first, second):
    """xt_CT ignores a packet that already carries a template or the untracked mark: after
    `CT --helper ftp`, a later `CT --zone 1` or `CT --notrack` does nothing (and `--helper sip`
    then `--helper ftp` keeps sip); one target's options act together."""
    raw = [f"-A PREROUTING -p tcp --dport 21 -j CT {first}"]
    if second:
        raw.append(f"-A PREROUTING -p tcp --dport 21 -j CT {second}")
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + "\n".join(raw) +
            "\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -m conntrack --ctstate RELATED -m helper --helper ftp -j DROP\nCOMMIT\n")
    cases = cases_from_json([_ftp_case("ftp")])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "ct.rules", "ip"), cases, sim_options())
    assert [(r.setup_verdicts, r.verdict, r.ct_state) for r in sim] == \
        [(r.setup_verdicts, r.verdict, r.ct_state) for r in kern]


@pytest.mark.parametrize("out_rule", [
    "-m connmark --mark 0x21 -m conntrack --ctstate RELATED -j DROP",  # the master's mark
    "-m conntrack --ctstate RELATED -m helper --helper ftp-21 -j DROP",  # xt_helper's strncmp
])
def test_an_expected_connection_inherits_the_mark_and_helper_prefixes_match(kernel, out_rule):
    """init_conntrack copies the master's ct mark into the expected connection; xt_helper
    compares only as many characters as the helper's name has (`ftp-21` matches `ftp`)."""
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
            "*mangle\n:PREROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp --dport 21 -m conntrack --ctstate NEW "
            "-j CONNMARK --set-mark 0x21\nCOMMIT\n"
            f"*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT {out_rule}\nCOMMIT\n")
    cases = cases_from_json([_ftp_case("ftp")])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "m.rules", "ip"), cases, sim_options())
    assert (kern[0].ct_state, kern[0].verdict) == ("RELATED", "DROP")
    assert [(r.setup_verdicts, r.verdict, r.ct_state) for r in sim] == \
        [(r.setup_verdicts, r.verdict, r.ct_state) for r in kern]


# nf_conntrack_ftp's reading of commands: (name, client command or None, server reply or None,
# data port); the server is the firewall, the client 198.51.100.7 (PORT: 198,51,100,7)
FTP_VARIANTS = [
    ("port", "PORT 198,51,100,7,156,64\\r\\n", None, 40000),
    ("port-lf-only", "PORT 198,51,100,7,156,64\\n", None, 40000),  # needs \r: partial, dropped
    ("port-trailing-blank", "PORT 198,51,100,7,156,64 \\r\\n", None, 40000),
    ("port-split", "PORT 198,51,100,", None, 40000),
    ("port-bare", "PORT\\r\\n", None, 40000),
    ("port-garbage", "PORT garbage\\r\\n", None, 40000),
    ("portx", "PORTX 198,51,100,7,156,64\\r\\n", None, 40000),
    ("port-big-port", "PORT 198,51,100,7,300,1\\r\\n", None, (300 << 8 | 1) & 0xFFFF),
    ("port-octet-263", "PORT 198,51,100,263,156,64\\r\\n", None, 40000),
    ("port-seven-numbers", "PORT 198,51,100,7,156,64,1\\r\\n", None, 40000),
    ("eprt", "EPRT |1|198.51.100.7|40000|\\r\\n", None, 40000),
    ("eprt-port0", "EPRT |1|198.51.100.7|0|\\r\\n", None, 40000),
    ("eprt-v6-on-v4", "EPRT |2|198.51.100.7|40000|\\r\\n", None, 40000),
    ("eprt-port-70000", "EPRT |1|198.51.100.7|70000|\\r\\n", None, 70000 & 0xFFFF),
    ("pasv", None, "227 Entering Passive Mode (192,0,2,1,195,80)\\r\\n", 50000),
    ("pasv-no-parens", None, "227 Entering Passive Mode 192,0,2,1,195,80\\r\\n", 50000),
    ("pasv-no-digits", None, "227 Entering Passive Mode\\r\\n", 50000),
    ("pasv-split", None, "227 Entering Passive Mode (192,0,2,", 50000),
    ("epsv", None, "229 Entering Extended Passive Mode (|||50000|)\\r\\n", 50000),
    ("epsv-no-paren", None, "229 Entering Extended Passive Mode |||50000|\\r\\n", 50000),
    ("epsv-port0", None, "229 Entering Extended Passive Mode (|||0|)\\r\\n", 50000),
    ("two-ports", "PORT 198,51,100,7,156,64\\r\\n", None, 40000),  # then PORT ...,65: 40001
]


def _ftp_variant_case(name, command, reply, port) -> dict:
    client, server = "198.51.100.7", "192.0.2.1"
    c = {"dir": "in", "src": client, "dst": server, "sport": 40000, "dport": 21}
    s = {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": 40000}
    setup = [dict(c, flags="S"), dict(s, flags="SA"), dict(c, flags="A"),
             dict(s, flags="PA", payload="220 ready\\r\\n"),
             dict(c, flags="PA", payload="USER a\\r\\n"),
             dict(s, flags="PA", payload="331 pw\\r\\n")]
    if command is not None:
        setup.append(dict(c, flags="PA", payload=command))
        if name == "two-ports":
            setup.append(dict(c, flags="PA", payload="PORT 198,51,100,7,156,65\\r\\n"))
        probe = {"dir": "out", "src": server, "dst": client, "sport": 20, "dport": port,
                 "flags": "S"}
    else:
        setup += [dict(c, flags="PA", payload="PASV\\r\\n"), dict(s, flags="PA", payload=reply)]
        probe = {"dir": "in", "src": client, "dst": server, "sport": 40001, "dport": port,
                 "flags": "S"}
    return {"name": name, "setup": setup, "probe": probe}


def test_ftp_commands_are_read_as_nf_conntrack_ftp_reads_them(kernel):
    """Partial commands (no `\\r` after PORT's numbers, a split segment, PORT without numbers)
    are dropped by the helper; 227 needs no parentheses; numbers have no range checks (ports
    wrap at 16 bits, an octet over 255 moves the address); one expectation per connection,
    a second PORT replaces the first.  The data SYN (INPUT drops what is not RELATED) tells."""
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --dport 21 -j ACCEPT\n"
            "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n")
    cases = cases_from_json([_ftp_variant_case(*v) for v in FTP_VARIANTS])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "ftp.rules", "ip"), cases, sim_options())
    got = {c.name: ((a.setup_verdicts, a.verdict, a.ct_state), (b.setup_verdicts, b.verdict,
                                                               b.ct_state))
           for c, a, b in zip(cases, kern, sim)}
    assert {k: v for k, v in got.items() if v[0] != v[1]} == {}
    # the variants do make a difference: some are RELATED, some dropped by the helper
    assert got["port"][0][1] == "ACCEPT" and got["port-lf-only"][0][0][-1] == "DROP"
    assert got["pasv-no-parens"][0][1] == "ACCEPT" and got["two-ports"][0][1] == "DROP"


def test_expectations_clash_across_connections_and_live_in_their_zone(kernel):
    """A second control connection announcing what another already expects makes
    nf_ct_expect_related fail, and nf_conntrack_ftp drops that segment; an expectation is
    found only from its master's conntrack zone."""
    client, server = "198.51.100.7", "192.0.2.1"

    def control(sport, with_port=True):
        c = {"dir": "in", "src": client, "dst": server, "sport": sport, "dport": 21}
        s = {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": sport}
        out = [dict(c, flags="S"), dict(s, flags="SA"), dict(c, flags="A"),
               dict(s, flags="PA", payload="220 ready\\r\\n"),
               dict(c, flags="PA", payload="USER a\\r\\n"),
               dict(s, flags="PA", payload="331 pw\\r\\n")]
        return out + ([dict(c, flags="PA", payload="PORT 198,51,100,7,156,100\\r\\n")]
                      if with_port else [])
    data = {"dir": "out", "src": server, "dst": client, "sport": 20, "dport": 40036,
            "flags": "S"}
    cases = [{"name": "clash", "setup": control(40000) + control(40002), "probe": data},
             {"name": "one", "setup": control(40000), "probe": data}]
    for zones in (False, True):
        raw = ["-A PREROUTING -p tcp --dport 21 -j CT --helper ftp" +
               (" --zone 1" if zones else "")]
        if zones:  # the control connection's replies in zone 1 too; the data SYN stays in 0
            raw.append("-A OUTPUT -p tcp --sport 21 -j CT --zone 1")
        text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + "\n".join(raw) +
                "\nCOMMIT\n*filter\n:OUTPUT ACCEPT [0:0]\n"
                "-A OUTPUT -m conntrack --ctstate RELATED -j DROP\nCOMMIT\n")
        cs = cases_from_json(cases)
        kernel.prepare(cs)
        kern = kernel_verdicts(("iptables", text), cs, kernel)
        sim = simulate(parse_iptables_save(text, "x.rules", "ip"), cs, sim_options())
        assert [(r.setup_verdicts, r.verdict, r.ct_state) for r in sim] == \
            [(r.setup_verdicts, r.verdict, r.ct_state) for r in kern]
        # the second PORT is dropped (both masters in one zone); the data SYN in zone 0 finds
        # the expectation only when its master is in zone 0 too
        assert kern[0].setup_verdicts[-1] == "DROP"
        assert kern[1].ct_state == ("NEW" if zones else "RELATED")


def test_a_reset_before_any_reply_reads_the_timeout_it_had(kernel):
    """nf_conntrack_tcp_packet deletes a connection reset before any reply before refreshing
    its timeout: the RST still reads SYN_SENT's 120 s, not CLOSE's 10."""
    text = ("*filter\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -p tcp -m conntrack --ctexpire 100:120 -j DROP\nCOMMIT\n")
    syn = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 40000,
           "dport": 9, "flags": "S"}
    rst = {"dir": "out", "src": "192.0.2.1", "dst": "198.51.100.7", "sport": 9,
           "dport": 40000, "flags": "RA"}
    cases = cases_from_json([{"name": "rst", "setup": [syn], "probe": rst}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "r.rules", "ip"), cases, sim_options())
    assert kern[0].verdict == "DROP" and sim[0].verdict == kern[0].verdict


@pytest.mark.parametrize("flags", ["R", "FA", "SA", "A"])
def test_an_invalid_segment_to_an_expected_port_uses_the_expectation_up(kernel, flags):
    """init_conntrack takes the expectation before TCP judges the segment: a RST, FIN or
    SYN-ACK to the announced data port is INVALID, and the real SYN after it is NEW (a bare
    ACK opens the connection instead, with nf_conntrack_tcp_loose=1: RELATED)."""
    case = _ftp_variant_case("pasv", None, "227 Entering Passive Mode (192,0,2,1,195,80)\\r\\n",
                             50000)
    syn = case["probe"]
    case["setup"].append(dict(syn, flags=flags))
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp --dport 50000 -m conntrack --ctstate RELATED -j DROP\nCOMMIT\n")
    cases = cases_from_json([case])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "e.rules", "ip"), cases, sim_options())
    assert [(r.setup_verdicts, r.verdict, r.ct_state) for r in sim] == \
        [(r.setup_verdicts, r.verdict, r.ct_state) for r in kern]


def test_a_syn_ack_answering_an_ignored_syn_resynchronises_the_entry(kernel):
    """After the server's RST the entry is CLOSE; the client's next SYN from the same port is
    ignored (no FIN was seen), and the server's SYN/ACK answering it brings the entry back in
    sync as SYN_RECV (timeout 60 s: `--ctexpire 50:70` sees it), not a stray CLOSE segment."""
    c = {"dir": "in", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 40000, "dport": 22}
    s = {"dir": "out", "src": "192.0.2.1", "dst": "198.51.100.7", "sport": 22, "dport": 40000}
    setup = [dict(c, flags="S"), dict(s, flags="SA"), dict(c, flags="A"), dict(s, flags="RA"),
             dict(c, flags="S")]
    text = ("*filter\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -p tcp --sport 22 -m conntrack --ctexpire 50:70 -j DROP\nCOMMIT\n")
    cases = cases_from_json([{"name": "resync", "setup": setup, "probe": dict(s, flags="SA")}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    sim = simulate(parse_iptables_save(text, "t.rules", "ip"), cases, sim_options())
    assert kern[0].verdict == "DROP"
    assert [(r.setup_verdicts, r.verdict) for r in sim] == \
        [(r.setup_verdicts, r.verdict) for r in kern]


def _sip(first: str, cseq: str, sdp_port=None, v_line=True, addr="198.51.100.7") -> str:
    body = ""
    if sdp_port is not None:
        body = ("v=0\\r\\n" if v_line else "") + f"o=- 1 1 IN IP4 {addr}\\r\\ns=-\\r\\n" \
            f"c=IN IP4 {addr}\\r\\nt=0 0\\r\\nm=audio {sdp_port} RTP/AVP 0\\r\\n"
    length = len(body.replace("\\r\\n", "  "))
    return (f"{first}\\r\\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\\r\\n"
            "From: <sip:a@198.51.100.7>;tag=1\\r\\nTo: <sip:b@192.0.2.1>\\r\\nCall-ID: 1@x\\r\\n"
            f"CSeq: {cseq}\\r\\nContent-Type: application/sdp\\r\\nContent-Length: {length}"
            f"\\r\\n\\r\\n{body}")


def test_sip_calls_are_followed_as_nf_conntrack_sip_follows_them(kernel):
    """INVITE's SDP opens RTP/RTCP; a BYE, a new INVITE or a final error answer drops the
    call's media expectations; an OPTIONS answer's SDP counts for nothing (its CSeq method
    has no handler); SDP without `v=` is ignored; a media port below 1024 drops the INVITE."""
    c = {"dir": "in", "proto": "udp", "src": "198.51.100.7", "sport": 5060, "dst": "192.0.2.1",
         "dport": 5060}
    s = {"dir": "out", "proto": "udp", "src": "192.0.2.1", "sport": 5060,
         "dst": "198.51.100.7", "dport": 5060}
    invite = dict(c, payload=_sip("INVITE sip:b@192.0.2.1 SIP/2.0", "1 INVITE", 49170))
    rtp = {"dir": "out", "proto": "udp", "src": "192.0.2.1", "sport": 30000,
           "dst": "198.51.100.7", "dport": 49170}
    cases = [
        {"name": "invite", "setup": [invite], "probe": rtp},
        {"name": "bye", "setup": [invite, dict(c, payload=_sip("BYE sip:b@192.0.2.1 SIP/2.0",
                                                                "2 BYE"))], "probe": rtp},
        {"name": "reinvite", "setup": [invite, dict(c, payload=_sip(
            "INVITE sip:b@192.0.2.1 SIP/2.0", "2 INVITE", 49200))], "probe": rtp},
        {"name": "busy", "setup": [invite, dict(s, payload=_sip("SIP/2.0 486 Busy Here",
                                                                 "1 INVITE"))], "probe": rtp},
        {"name": "options-answer", "setup": [dict(s, payload=_sip(
            "SIP/2.0 200 OK", "1 OPTIONS", 30000, addr="192.0.2.1"))],
         "probe": {"dir": "in", "proto": "udp", "src": "198.51.100.7", "sport": 40000,
                   "dst": "192.0.2.1", "dport": 30000}},
        {"name": "no-v-line", "setup": [dict(c, payload=_sip(
            "INVITE sip:b@192.0.2.1 SIP/2.0", "1 INVITE", 49170, v_line=False))], "probe": rtp},
        {"name": "low-port", "setup": [dict(c, payload=_sip(
            "INVITE sip:b@192.0.2.1 SIP/2.0", "1 INVITE", 500))],
         "probe": dict(rtp, dport=500)},
    ]
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p udp --dport 5060 -j CT --helper sip\n"
            "-A OUTPUT -p udp --dport 5060 -j CT --helper sip\nCOMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -p udp --sport 30000 -m conntrack --ctstate RELATED -j DROP\n"
            "-A INPUT -p udp --dport 30000 -m conntrack --ctstate RELATED -j DROP\nCOMMIT\n")
    cs = cases_from_json(cases)
    kernel.prepare(cs)
    kern = kernel_verdicts(("iptables", text), cs, kernel)
    sim = simulate(parse_iptables_save(text, "sip.rules", "ip"), cs, sim_options())
    got = {c.name: ((a.setup_verdicts, a.verdict, a.ct_state),
                    (b.setup_verdicts, b.verdict, b.ct_state)) for c, a, b in zip(cs, kern, sim)}
    assert {k: v for k, v in got.items() if v[0] != v[1]} == {}
    assert got["invite"][0][2] == "RELATED" and got["bye"][0][2] == "NEW"


def _nat_ftp(c: dict, s: dict, command: str, reply_to_command: bool) -> list:
    """A control connection's handshake and greeting, then the command (from the client) or
    the reply (from the server) that announces the data connection."""
    setup = [dict(c, flags="S"), dict(s, flags="SA"), dict(c, flags="A"),
             dict(s, flags="PA", payload="220 ready\\r\\n"),
             dict(c, flags="PA", payload="USER x\\r\\n"), dict(s, flags="PA", payload="331 ok\\r\\n")]
    if reply_to_command:
        return setup + [dict(c, flags="PA", payload="PASV\\r\\n"),
                        dict(s, flags="PA", payload=command)]
    return setup + [dict(c, flags="PA", payload=command)]


def test_a_data_connection_is_natted_as_its_master(kernel):
    """nf_nat_ftp / nf_nat_tftp: an expected connection of a NATed control connection gets
    the master's mapping (nf_nat_follow_master), not the nat chains': PASV to a server behind
    DNAT is forwarded to it, the server's active data connection to a masqueraded client is
    DNATed back to the client, and a passive data connection from behind MASQUERADE is SNATed
    although the MASQUERADE rule covers port 21 only."""
    client, public, inner = "198.51.100.7", "192.0.2.1", "203.0.113.10"
    # DNAT: the client outside (eth0) reaches the server inside (eth1) at the public address
    c = {"dir": "in", "src": client, "sport": 40000, "dst": public, "dport": 21, "iif": "eth0"}
    s = {"dir": "fwd", "src": inner, "sport": 21, "dst": client, "dport": 40000,
         "iif": "eth1", "oif": "eth0"}
    dnat = [{"name": "dnat-pasv", "setup": _nat_ftp(
                 c, s, "227 Entering Passive Mode (203,0,113,10,195,80)\\r\\n", True),
             "probe": {"dir": "in", "src": client, "sport": 40001, "dst": public,
                       "dport": 50000, "flags": "S", "iif": "eth0"}},
            {"name": "dnat-epsv", "setup": _nat_ftp(
                 c, s, "229 Entering Extended Passive Mode (|||50000|)\\r\\n", True),
             "probe": {"dir": "in", "src": client, "sport": 40001, "dst": public,
                       "dport": 50000, "flags": "S", "iif": "eth0"}}]
    dnat_rules = ("*raw\n:PREROUTING ACCEPT [0:0]\n"
                  "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n*nat\n"
                  ":PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                  f"-A PREROUTING -i eth0 -d {public} -p tcp --dport 21 -j DNAT "
                  f"--to-destination {inner}\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n"
                  ":FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                  "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
                  "-A FORWARD -i eth0 -o eth1 -p tcp --dport 21 -j ACCEPT\nCOMMIT\n")
    # MASQUERADE: the client inside (eth0) reaches the server outside (eth1)
    masq_ip = "203.0.113.1"
    c2 = {"dir": "fwd", "src": client, "sport": 40000, "dst": inner, "dport": 21,
          "iif": "eth0", "oif": "eth1"}
    s2 = {"dir": "in", "src": inner, "sport": 21, "dst": masq_ip, "dport": 40000, "iif": "eth1"}
    masq = [{"name": "masq-port", "setup": _nat_ftp(c2, s2, "PORT 198,51,100,7,156,64\\r\\n",
                                                   False),
             "probe": {"dir": "in", "src": inner, "sport": 20, "dst": masq_ip, "dport": 40000,
                       "flags": "S", "iif": "eth1"}},
            {"name": "masq-pasv-reply", "setup": _nat_ftp(
                 c2, s2, "227 Entering Passive Mode (203,0,113,10,195,80)\\r\\n", True) + [
                 {"dir": "fwd", "src": client, "sport": 40001, "dst": inner, "dport": 50000,
                  "flags": "S", "iif": "eth0", "oif": "eth1"}],
             "probe": {"dir": "in", "src": inner, "sport": 50000, "dst": masq_ip,
                       "dport": 40001, "flags": "SA", "iif": "eth1"}}]
    masq_rules = ("*raw\n:PREROUTING ACCEPT [0:0]\n"
                  "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n*nat\n"
                  ":PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                  "-A POSTROUTING -o eth1 -p tcp --dport 21 -j MASQUERADE\nCOMMIT\n"
                  "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                  "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
                  "-A FORWARD -i eth0 -o eth1 -p tcp --dport 21 -j ACCEPT\nCOMMIT\n")
    for rules, cases in ((dnat_rules, dnat), (masq_rules, masq)):
        cs = cases_from_json(cases)
        kernel.prepare(cs)
        kern = kernel_verdicts(("iptables", rules), cs, kernel)
        sim = simulate(parse_iptables_save(rules, "n.rules", "ip"), cs, sim_options())
        got = {c.name: ((a.verdict, a.ct_state), (b.verdict, b.ct_state))
               for c, a, b in zip(cs, kern, sim)}
        assert {k: v for k, v in got.items() if v[0] != v[1]} == {}
        assert all(v[0][0] == "ACCEPT" for v in got.values()), got


def _helper_cases():
    """The data connection (its master has the ftp helper), the control connection itself
    (its own helper, no master) and an untracked-free plain connection out of port 20."""
    data = _ftp_case("data")
    control = dict(data, name="control", probe=dict(data["setup"][5], payload="230 ok\\r\\n"))
    plain = {"name": "plain", "probe": dict(data["probe"], dport=40009)}
    return cases_from_json([data, control, plain])


@pytest.mark.parametrize("match", ["-m helper --helper ftp", "-m helper ! --helper ftp",
                                   "-m helper --helper ftp-21"])
def test_helper_matches_translate_to_nft_ct_helper(kernel, match):
    """nft's `ct helper`, like xt_helper, reads the helper of the connection's master (fwc
    refused it, taking it for the connection's own); xt's negation also holds without a
    master, where nft's `!=` stops the rule: a chain of its own returns for the helper."""
    from fwc.backends.nft import emit_nft
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
            f"*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp {match} -j DROP\nCOMMIT\n")
    rs = parse_iptables_save(text, "h.rules", "ip")
    out = emit_nft(rs)
    assert "ct helper" in out
    cases = _helper_cases()
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", text), cases, kernel)
    ours = kernel_verdicts(("nft", out), cases, kernel)
    sim = simulate(rs, cases, sim_options())
    want = {"-m helper ! --helper ftp": ["ACCEPT", "DROP", "DROP"]}.get(
        match, ["DROP", "ACCEPT", "ACCEPT"])
    assert [r.verdict for r in kern] == want
    assert [r.verdict for r in ours] == want and [r.verdict for r in sim] == want


def test_nft_ct_helper_not_equal_stops_the_rule_without_a_master(kernel):
    """`ct helper != "ftp"` matches only a connection whose master has another helper: not
    the control connection nor a plain one (fwc read it as xt_helper's negation)."""
    from fwc.backends.nft import emit_nft
    text = ('table ip h {\n ct helper ftp-std { type "ftp" protocol tcp; }\n'
            ' chain pre {\n  type filter hook prerouting priority filter; policy accept;\n'
            '  tcp dport 21 ct helper set "ftp-std"\n }\n'
            ' chain out {\n  type filter hook output priority filter; policy accept;\n'
            '  ct helper != "sip" drop\n  tcp sport 21 ct helper != "ftp" drop\n }\n}\n')
    rs = parse_nft(text, "h.nft")
    cases = _helper_cases()
    kernel.prepare(cases)
    kern = kernel_verdicts(("nft", text), cases, kernel)
    ours = kernel_verdicts(("nft", emit_nft(rs)), cases, kernel)
    sim = simulate(rs, cases, sim_options())
    assert [r.verdict for r in kern] == ["DROP", "ACCEPT", "ACCEPT"]
    assert [r.verdict for r in ours] == [r.verdict for r in kern] == [r.verdict for r in sim]
