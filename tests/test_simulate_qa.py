"""The questions users asked, answered by the simulator (IR built by hand)."""

from __future__ import annotations

import pytest

from fwc import ir
from test_simulate_util import R, chain, filter_rs, ruleset, run, state, table, tcp_dports, udp_dport

ACCEPT = ir.Accept()
SSH_WEB = R(tcp_dports(22, 80, 443), verdict=ACCEPT)
EST = R((state("ESTABLISHED", "RELATED"),), verdict=ACCEPT)


def test_bare_ack_to_ssh_is_new_and_accepted_by_a_port_only_rule():
    rs = filter_rs([SSH_WEB], "drop")
    res = run(rs, {"dir": "in", "src": "198.51.100.7", "sport": 40000, "dport": 22, "flags": "A"})
    assert (res.verdict, res.ct_state) == ("ACCEPT", "NEW")


def test_bare_ack_accepted_with_ctstate_new_established_rule():
    rule = R(tcp_dports(22, 80, 443) + (state("NEW", "ESTABLISHED"),), verdict=ACCEPT)
    res = run(filter_rs([rule], "drop"), {"dport": 22, "flags": "A"})
    assert (res.verdict, res.ct_state) == ("ACCEPT", "NEW")


def test_bare_ack_is_invalid_without_loose_pickup():
    rule = R(tcp_dports(22) + (state("NEW", "ESTABLISHED"),), verdict=ACCEPT)
    res = run(filter_rs([rule], "drop"), {"dport": 22, "flags": "A"}, tcp_loose=False)
    assert (res.verdict, res.ct_state) == ("DROP", "INVALID")


def test_bare_rst_is_invalid():
    rule = R(tcp_dports(22) + (state("NEW", "ESTABLISHED"),), verdict=ACCEPT)
    res = run(filter_rs([rule], "drop"), {"dport": 22, "flags": "R"})
    assert (res.verdict, res.ct_state) == ("DROP", "INVALID")


DNS_QUERY = {"dir": "out", "proto": "udp", "src": "192.0.2.1", "sport": 40000,
             "dst": "198.51.100.53", "dport": 53}
DNS_REPLY = {"dir": "in", "proto": "udp", "src": "198.51.100.53", "sport": 53,
             "dst": "192.0.2.1", "dport": 40000}


def test_dns_reply_dropped_under_input_drop_without_established_rule():
    res = run(filter_rs([SSH_WEB], "drop"), DNS_REPLY, DNS_QUERY)
    assert res.setup_verdicts == ("ACCEPT",)
    assert (res.verdict, res.ct_state) == ("DROP", "ESTABLISHED")


def test_dns_reply_accepted_when_established_is_accepted():
    res = run(filter_rs([EST, SSH_WEB], "drop"), DNS_REPLY, DNS_QUERY)
    assert (res.verdict, res.ct_state) == ("ACCEPT", "ESTABLISHED")


def test_output_drop_blocks_own_dns_and_https():
    rs = filter_rs([EST], "drop", output_policy="drop")
    assert run(rs, DNS_QUERY).verdict == "DROP"
    https = {"dir": "out", "dst": "198.51.100.80", "dport": 443}
    assert run(rs, https).verdict == "DROP"
    # ...and a DROPped query leaves no conntrack entry, so its answer is not ESTABLISHED
    res = run(rs, DNS_REPLY, DNS_QUERY)
    assert res.setup_verdicts == ("DROP",)
    assert res.ct_state == "NEW"


def test_reject_outbound_smtp():
    reject = R(tcp_dports(25), verdict=ir.Reject("tcp-reset"))
    rs = filter_rs(output_rules=[reject])
    assert run(rs, {"dir": "out", "dport": 25}).verdict == "REJECT"
    assert run(rs, {"dir": "out", "dport": 587}).verdict == "ACCEPT"


def test_icmp_port_unreachable_for_tracked_flow_is_related():
    rs = filter_rs([EST], "drop")
    err = {"dir": "in", "proto": "icmp", "src": "198.51.100.53", "dst": "192.0.2.1",
           "icmp_type": 3, "icmp_code": 3, "quote": 0}
    res = run(rs, err, DNS_QUERY)
    assert (res.verdict, res.ct_state) == ("ACCEPT", "RELATED")


def test_icmp_error_quoting_unknown_flow_is_invalid():
    rs = filter_rs([EST], "drop")
    other = dict(DNS_QUERY, dport=54)
    err = {"dir": "in", "proto": "icmp", "src": "198.51.100.53", "dst": "192.0.2.1",
           "icmp_type": 3, "icmp_code": 3, "quote": 0}
    # the quoted query was dropped by OUTPUT, so it has no entry
    rs2 = filter_rs([EST], "drop", output_rules=[R(udp_dport(54), verdict=ir.Drop())])
    res = run(rs2, err, other)
    assert (res.verdict, res.ct_state) == ("DROP", "INVALID")
    assert run(rs, err, other).ct_state == "RELATED"


def _ftp_ruleset(helper: bool) -> ir.Ruleset:
    raw = []
    if helper:
        raw = [R(tcp_dports(21), statements=(ir.CtHelperSet("ftp"),))]
    return ruleset(
        table("raw", chain("raw", "PREROUTING", *raw), chain("raw", "OUTPUT")),
        table("filter", chain("filter", "INPUT", EST, R(tcp_dports(21), verdict=ACCEPT),
                              policy="drop"),
              chain("filter", "FORWARD"), chain("filter", "OUTPUT")))


C, S = "198.51.100.7", "192.0.2.1"
FTP_CONTROL = [
    {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 21, "flags": "S"},
    {"dir": "out", "src": S, "sport": 21, "dst": C, "dport": 40000, "flags": "SA"},
    {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 21, "flags": "A"},
    {"dir": "out", "src": S, "sport": 21, "dst": C, "dport": 40000, "flags": "PA",
     "payload": "220 ready\\r\\n"},
    {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 21, "flags": "PA",
     "payload": "USER ftp\\r\\n"},
    {"dir": "out", "src": S, "sport": 21, "dst": C, "dport": 40000, "flags": "PA",
     "payload": "331 password\\r\\n"},
]
PASV = [
    {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 21, "flags": "PA",
     "payload": "PASV\\r\\n"},
    {"dir": "out", "src": S, "sport": 21, "dst": C, "dport": 40000, "flags": "PA",
     "payload": "227 Entering Passive Mode (192,0,2,1,195,80)\\r\\n"},
]
PASV_DATA = {"dir": "in", "src": C, "sport": 40001, "dst": S, "dport": 195 * 256 + 80,
             "flags": "S"}


def test_ftp_passive_data_is_related_with_helper():
    res = run(_ftp_ruleset(True), PASV_DATA, *FTP_CONTROL, *PASV)
    assert set(res.setup_verdicts) == {"ACCEPT"}
    assert (res.verdict, res.ct_state) == ("ACCEPT", "RELATED")


def test_ftp_passive_data_is_new_without_helper():
    res = run(_ftp_ruleset(False), PASV_DATA, *FTP_CONTROL, *PASV)
    assert (res.verdict, res.ct_state) == ("DROP", "NEW")


def test_ftp_port_command_makes_active_data_related():
    port = {"dir": "in", "src": C, "sport": 40000, "dst": S, "dport": 21, "flags": "PA",
            "payload": "PORT 198,51,100,7,156,64\\r\\n"}
    data = {"dir": "out", "src": S, "sport": 20, "dst": C, "dport": 156 * 256 + 64, "flags": "S"}
    res = run(_ftp_ruleset(True), data, *FTP_CONTROL, port)
    assert res.ct_state == "RELATED"


def test_ftp_command_in_first_segment_of_a_direction_is_not_parsed():
    # PASV answered in the server's *first* data segment: the kernel helper skips it
    first = [FTP_CONTROL[0], FTP_CONTROL[1], FTP_CONTROL[2], PASV[1]]
    res = run(_ftp_ruleset(True), PASV_DATA, *first)
    assert res.ct_state == "NEW"


def test_notrack_makes_packets_untracked():
    raw = table("raw", chain("raw", "PREROUTING", R(tcp_dports(80), statements=(ir.Notrack(),))),
                chain("raw", "OUTPUT"))
    filt = table("filter", chain("filter", "INPUT", R((state("UNTRACKED"),), verdict=ACCEPT),
                                 policy="drop"))
    res = run(ruleset(raw, filt), {"dport": 80})
    assert (res.verdict, res.ct_state) == ("ACCEPT", "UNTRACKED")
    res = run(ruleset(raw, filt), {"dport": 81})
    assert (res.verdict, res.ct_state) == ("DROP", "NEW")



@pytest.mark.parametrize("probe", [
    {"icmp_type": [1]}, {"icmp_seq": "300.1.1.1"}, {"icmp_code": ""}, {"icmp_id": 70000},
    {"iif": []}, {"oif": ""}, {"sport": True}, {"payload": "\\x"}, {"icmp_type": 256},
])
def test_malformed_case_fields_are_located_errors(probe):
    """Found by feeding random JSON values to the cases parser: these crashed (int() of a list,
    a list as an interface name) instead of naming the field."""
    from fwc.errors import FwcSyntaxError
    from fwc.packet import cases_from_json
    with pytest.raises(FwcSyntaxError) as e:
        cases_from_json([{"name": "c", "probe": probe}])
    assert "probe" in str(e.value)
