"""Conntrack behaviour of the simulator: TCP states, UDP, ICMP, helpers, NAT, confirmation."""

from __future__ import annotations

import ipaddress

import pytest

from fwc import ir
from fwc.conntrack import tcp
from test_simulate_util import R, chain, filter_rs, ruleset, run, run_sim, state, table, tcp_dports

ACCEPT = ir.Accept()
OPEN = filter_rs()  # every policy accept: pure conntrack observation
C, S = "198.51.100.7", "192.0.2.1"
SYN = {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 22, "flags": "S"}
SYNACK = {"dir": "out", "src": S, "sport": 22, "dst": C, "dport": 40000, "flags": "SA"}
ACK = dict(SYN, flags="A")


@pytest.mark.parametrize("flags", ["SF", "SR", "", "F", "SRA", "FR"])
def test_invalid_flag_combinations(flags):
    assert run(OPEN, dict(SYN, flags=flags)).ct_state == "INVALID"


def test_handshake_states_and_assured():
    sim, res = run_sim(OPEN, ACK, SYN, SYNACK)
    assert res.ct_state == "ESTABLISHED"
    (line,) = sim.conntrack_listing()
    assert "ESTABLISHED" in line and "[ASSURED]" in line and "UNREPLIED" not in line


def test_synack_reply_is_established_and_syn_only_is_unreplied():
    res = run(OPEN, SYNACK, SYN)
    assert res.ct_state == "ESTABLISHED"
    sim, res = run_sim(OPEN, SYN)
    assert res.ct_state == "NEW"
    assert "SYN_SENT" in sim.conntrack_listing()[0] and "[UNREPLIED]" in sim.conntrack_listing()[0]


def test_synack_without_connection_is_invalid():
    assert run(OPEN, SYNACK).ct_state == "INVALID"


def test_retransmitted_syn_stays_new():
    assert run(OPEN, SYN, SYN).ct_state == "NEW"


def test_fin_and_rst_close():
    fin = dict(ACK, flags="FA")
    sim, res = run_sim(OPEN, fin, SYN, SYNACK, ACK)
    assert res.ct_state == "ESTABLISHED"
    assert "FIN_WAIT" in sim.conntrack_listing()[0]
    sim, res = run_sim(OPEN, dict(ACK, flags="R"), SYN, SYNACK, ACK)
    assert "CLOSE" in sim.conntrack_listing()[0]


def test_rst_answer_to_syn_deletes_the_entry():
    rst = dict(SYNACK, flags="RA")
    sim, res = run_sim(OPEN, rst, SYN)
    assert res.ct_state == "ESTABLISHED"
    assert sim.conntrack_listing() == []


def test_dropped_syn_leaves_no_entry():
    rs = filter_rs([R(tcp_dports(22), verdict=ir.Drop())])
    sim, res = run_sim(rs, SYN)
    assert res.verdict == "DROP" and res.ct_state == "NEW"
    assert sim.conntrack_listing() == []
    # and the server's SYN-ACK then finds nothing
    assert run(rs, SYNACK, SYN).ct_state == "INVALID"


def test_udp_reply_established():
    q = {"dir": "out", "proto": "udp", "sport": 5000, "dport": 123}
    a = {"dir": "in", "proto": "udp", "src": "198.51.100.10", "sport": 123, "dst": "192.0.2.1",
         "dport": 5000}
    assert run(OPEN, a, q).ct_state == "ESTABLISHED"
    assert run(OPEN, a).ct_state == "NEW"


def test_icmp_echo_request_reply():
    req = {"dir": "out", "proto": "icmp", "icmp_type": 8, "icmp_id": 7}
    rep = {"dir": "in", "proto": "icmp", "src": "198.51.100.10", "dst": "192.0.2.1",
           "icmp_type": 0, "icmp_id": 7}
    assert run(OPEN, rep, req).ct_state == "ESTABLISHED"
    assert run(OPEN, dict(rep, icmp_id=8), req).ct_state == "INVALID"
    assert run(OPEN, req).ct_state == "NEW"


def test_icmpv6_echo_and_neighbour_discovery():
    req = {"dir": "in", "proto": "icmpv6", "icmp_type": 128}
    assert run(filter_rs(family="ip6"), req).ct_state == "NEW"
    ns = {"dir": "in", "proto": "icmpv6", "icmp_type": 135}
    assert run(filter_rs(family="ip6"), ns).ct_state == "UNTRACKED"


def test_icmp_error_must_be_addressed_to_quoted_source():
    q = {"dir": "out", "proto": "udp", "src": S, "sport": 5000, "dst": C, "dport": 53}
    err = {"dir": "in", "proto": "icmp", "src": C, "dst": "192.0.2.99", "icmp_type": 3,
           "icmp_code": 3, "quote": 0}
    assert run(OPEN, err, q).ct_state == "INVALID"
    assert run(OPEN, dict(err, dst=S), q).ct_state == "RELATED"


def _tftp_rs():
    raw = table("raw", chain("raw", "OUTPUT", R((ir.Proto(frozenset({17})),
                                                  ir.Port("udp", "dport", (ir.Range(69, 69),))),
                                                 statements=(ir.CtHelperSet("tftp"),))),
                chain("raw", "PREROUTING"))
    return ruleset(raw, table("filter", chain("filter", "INPUT")))


def test_tftp_reply_from_new_port_is_related():
    rrq = {"dir": "out", "proto": "udp", "src": S, "sport": 3000, "dst": C, "dport": 69,
           "payload": "\\x00\\x01file\\x00octet\\x00"}
    data = {"dir": "in", "proto": "udp", "src": C, "sport": 4500, "dst": S, "dport": 3000}
    assert run(_tftp_rs(), data, rrq).ct_state == "RELATED"
    assert run(OPEN, data, rrq).ct_state == "NEW"


def test_sip_invite_opens_rtp_and_rtcp():
    raw = table("raw", chain("raw", "PREROUTING",
                             R((ir.Proto(frozenset({17})),
                                ir.Port("udp", "dport", (ir.Range(5060, 5060),))),
                               statements=(ir.CtHelperSet("sip"),))), chain("raw", "OUTPUT"))
    rs = ruleset(raw, table("filter", chain("filter", "INPUT")))
    invite = {"dir": "in", "proto": "udp", "src": C, "sport": 5060, "dst": S, "dport": 5060,
              "payload": "INVITE sip:bob@192.0.2.1 SIP/2.0\\r\\nVia: x\\r\\nCSeq: 1 INVITE\\r\\n"
                         "\\r\\nv=0\\r\\n"
                         "c=IN IP4 198.51.100.7\\r\\nm=audio 49170 RTP/AVP 0\\r\\n"}
    rtp = {"dir": "out", "proto": "udp", "src": S, "sport": 30000, "dst": C, "dport": 49170}
    assert run(rs, rtp, invite).ct_state == "RELATED"
    assert run(rs, dict(rtp, dport=49171), invite).ct_state == "RELATED"
    assert run(rs, dict(rtp, dport=49172), invite).ct_state == "NEW"
    # the kernel's SIP helper drops a message it cannot parse a CSeq from
    bad = dict(invite, payload=invite["payload"].replace("CSeq: 1 INVITE", "X: y"))
    assert run(rs, rtp, bad).setup_verdicts == ("DROP",)
    # a header with no name is no CSeq either
    nameless = dict(invite, payload=invite["payload"].replace("CSeq: 1 INVITE", ": 1 INVITE"))
    assert run(rs, rtp, nameless).setup_verdicts == ("DROP",)


def _nat_rs(pre=(), post=(), out=()):
    nat = table("nat", chain("nat", "PREROUTING", *pre), chain("nat", "INPUT"),
                chain("nat", "OUTPUT", *out), chain("nat", "POSTROUTING", *post))
    return ruleset(nat, table("filter", chain("filter", "FORWARD")))


INNER = "203.0.113.10"
FWD = {"dir": "fwd", "src": "203.0.113.10", "sport": 40000, "dst": "198.51.100.10", "dport": 80,
       "iif": "eth1", "oif": "eth0"}


def test_masquerade_and_reply_un_nat():
    rs = _nat_rs(post=[R((ir.Interface("oifname", "eth0"),), verdict=ir.Masquerade())])
    reply = {"dir": "fwd", "src": "198.51.100.10", "sport": 80, "dst": "192.0.2.1",
             "dport": 40000, "flags": "SA", "iif": "eth0", "oif": "eth1"}
    sim, res = run_sim(rs, reply, FWD)
    assert res.ct_state == "ESTABLISHED"
    (line,) = sim.conntrack_listing()
    assert "dst=192.0.2.1 sport=80 dport=40000" in line and "SNAT" in line
    # the reply's destination is rewritten back in prerouting (seen by FORWARD as the inner host)
    fwd_hits = [e for e in res.trace if e["action"].startswith("nat:")]
    assert any("203.0.113.10" in e["action"] for e in fwd_hits)


def test_snat_is_applied_once_per_connection_and_replies_match():
    snat = R(verdict=ir.Snat((ir.NatTarget(ipaddress.ip_network("192.0.2.50/32")),)))
    rs = _nat_rs(post=[snat])
    reply = {"dir": "fwd", "src": "198.51.100.10", "sport": 80, "dst": "192.0.2.50",
             "dport": 40000, "flags": "SA", "iif": "eth0", "oif": "eth1"}
    assert run(rs, reply, FWD).ct_state == "ESTABLISHED"
    assert run(rs, dict(reply, dst="192.0.2.1"), FWD).ct_state == "INVALID"


def test_dnat_port_forward_and_reply():
    dnat = R(tcp_dports(8080), verdict=ir.Dnat((ir.NatTarget(
        ipaddress.ip_network("203.0.113.10/32"), ir.Range(80, 80)),)))
    filt = table("filter", chain("filter", "FORWARD",
                                 R((state("DNAT"),), verdict=ACCEPT), policy="drop"))
    nat = table("nat", chain("nat", "PREROUTING", dnat), chain("nat", "POSTROUTING"))
    rs = ruleset(nat, filt)
    syn = {"dir": "fwd", "src": C, "sport": 40000, "dst": "192.0.2.1", "dport": 8080,
           "iif": "eth0", "oif": "eth1"}
    res = run(rs, syn)
    assert (res.verdict, res.ct_state) == ("ACCEPT", "NEW")
    reply = {"dir": "fwd", "src": "203.0.113.10", "sport": 80, "dst": C, "dport": 40000,
             "flags": "SA", "iif": "eth1", "oif": "eth0"}
    res = run(rs, reply, syn)
    assert (res.verdict, res.ct_state) == ("ACCEPT", "ESTABLISHED")
    assert run(rs, dict(syn, dport=8081)).verdict == "DROP"


def test_nat_clash_moves_the_port_to_one_the_kernel_picks_at_random():
    from fwc.errors import Unsupported
    masq = R(verdict=ir.Masquerade())
    rs = _nat_rs(post=[masq])
    other = dict(FWD, src="203.0.113.11")
    sim, res = run_sim(rs, other, FWD)
    lines = sim.conntrack_listing()
    assert len(lines) == 2
    # 40000 was taken on 192.0.2.1 by the first flow: nf_nat_l4proto_unique_tuple starts its
    # search for a source port at a random offset
    assert "dport=?" in lines[1] and "SNAT" in lines[1]
    reply = {"dir": "fwd", "src": "198.51.100.10", "sport": 80, "dst": "192.0.2.1",
             "dport": 1234, "flags": "SA", "iif": "eth0", "oif": "eth1"}
    with pytest.raises(Unsupported, match="picked that connection's port at random from "
                                          "1024-65535"):
        run_sim(rs, reply, FWD, other)
    # the first flow kept its port; a reply to it is its own, and a port outside the class
    # range (1024-65535) cannot be the second flow's
    assert run_sim(rs, dict(reply, dport=40000), FWD, other)[1].ct_state == "ESTABLISHED"
    assert run_sim(rs, dict(reply, dport=80), FWD, other)[1].ct_state == "INVALID"


def test_tcp_table_matches_kernel_facts():
    assert tcp.transition("SYN_SENT", 1, 0x12) == "SYN_RECV"
    assert tcp.transition("SYN_RECV", 0, 0x10) == "ESTABLISHED"
    assert tcp.transition("ESTABLISHED", 0, 0x02) == tcp.IG
    assert tcp.new_state(0x10, loose=False) is None
    assert tcp.new_state(0x10, loose=True) == "ESTABLISHED"
