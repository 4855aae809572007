"""The real-kernel harness against rulesets whose kernel behaviour is known."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from fwc.packet import cases_from_json
from fwc.testing import netns, wire
from fwc.testing.compare import compare_kernel, kernel_verdicts
from fwc.testing.kernel import KernelError, KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

QA_RULES = [
    "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT",
]


def restore_text(rules, policies=("DROP", "ACCEPT", "ACCEPT"), table="filter") -> str:
    chains = "".join(f":{c} {p} [0:0]\n" for c, p in zip(("INPUT", "FORWARD", "OUTPUT"), policies))
    return f"*{table}\n{chains}" + "".join(r + "\n" for r in rules) + "COMMIT\n"


QA_V4 = restore_text(QA_RULES)
QA_V4_NOEST = restore_text(QA_RULES[1:])

QA_NFT = """
table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iifname "lo" accept
        tcp dport { 22, 80, 443 } accept
    }
}
"""
QA_NFT_NOEST = QA_NFT.replace("ct state established,related accept\n", "")

DNS_SETUP_V4 = [{"dir": "out", "proto": "udp", "dst": "198.51.100.53", "sport": 5353, "dport": 53}]
DNS_REPLY_V4 = {"dir": "in", "proto": "udp", "src": "198.51.100.53", "sport": 53, "dport": 5353}
DNS_SETUP_V6 = [{"dir": "out", "proto": "udp", "dst": "2001:db8:a::53", "sport": 5353, "dport": 53}]
DNS_REPLY_V6 = {"dir": "in", "proto": "udp", "src": "2001:db8:a::53", "sport": 53, "dport": 5353}

QA_CASES = cases_from_json([
    {"name": "ssh", "probe": {"dir": "in", "dport": 22}},
    {"name": "telnet", "probe": {"dir": "in", "dport": 23}},
    {"name": "dns-reply", "setup": DNS_SETUP_V4, "probe": DNS_REPLY_V4},
    {"name": "ssh6", "probe": {"dir": "in", "l3": "ipv6", "dport": 22}},
    {"name": "telnet6", "probe": {"dir": "in", "l3": "ipv6", "dport": 23}},
    {"name": "dns-reply6", "setup": DNS_SETUP_V6, "probe": DNS_REPLY_V6},
])


def by_name(results):
    return {r.name: r for r in results}


def qa_loaders(with_established: bool):
    v4 = QA_V4 if with_established else QA_V4_NOEST
    nft = QA_NFT if with_established else QA_NFT_NOEST
    return {"iptables": ("iptables", v4, v4), "nft": ("nft", nft)}


@pytest.mark.parametrize("kind", ["iptables", "nft"])
def test_qa_host_firewall_with_established_rule(kernel_module, kind):
    results = by_name(kernel_verdicts(qa_loaders(True)[kind], QA_CASES, kernel_module))
    for suffix in ("", "6"):
        assert (results["ssh" + suffix].verdict, results["ssh" + suffix].ct_state) == ("ACCEPT", "NEW")
        assert results["telnet" + suffix].verdict == "DROP"
        dns = results["dns-reply" + suffix]
        assert (dns.verdict, dns.ct_state, dns.setup_verdicts) == ("ACCEPT", "ESTABLISHED", ("ACCEPT",))


@pytest.mark.parametrize("kind", ["iptables", "nft"])
def test_qa_host_firewall_without_established_rule_drops_dns_reply(kernel_module, kind):
    results = by_name(kernel_verdicts(qa_loaders(False)[kind], QA_CASES, kernel_module))
    for suffix in ("", "6"):
        assert results["ssh" + suffix].verdict == "ACCEPT"
        dns = results["dns-reply" + suffix]
        assert (dns.verdict, dns.ct_state) == ("DROP", "ESTABLISHED")


def test_iptables_and_nft_forms_agree_but_established_rule_matters(kernel_module):
    assert compare_kernel(qa_loaders(True)["iptables"], qa_loaders(True)["nft"], QA_CASES,
                          kernel_module) == []
    diff = compare_kernel(qa_loaders(True)["nft"], qa_loaders(False)["nft"], QA_CASES, kernel_module)
    assert sorted(c.name for c, _, _ in diff) == ["dns-reply", "dns-reply6"]


REJECT_CASES = cases_from_json([
    {"name": "smtp-out", "probe": {"dir": "out", "dport": 25}},
    {"name": "http-out", "probe": {"dir": "out", "dport": 80}},
    {"name": "ident-in", "probe": {"dir": "in", "dport": 113}},
    {"name": "smtp-out6", "probe": {"dir": "out", "l3": "ipv6", "dport": 25}},
    {"name": "ident-in6", "probe": {"dir": "in", "l3": "ipv6", "dport": 113}},
])


def test_reject_in_output_and_tcp_reset_in_input(kernel_module):
    rules = ["-A OUTPUT -p tcp --dport 25 -j REJECT",
             "-A INPUT -p tcp --dport 113 -j REJECT --reject-with tcp-reset"]
    kernel_module.load_iptables(restore_text(rules, ("ACCEPT",) * 3), restore_text(rules, ("ACCEPT",) * 3))
    results = by_name(kernel_module.run_cases(REJECT_CASES))
    assert {n: r.verdict for n, r in results.items()} == {
        "smtp-out": "REJECT", "http-out": "ACCEPT", "ident-in": "REJECT",
        "smtp-out6": "REJECT", "ident-in6": "REJECT"}


def test_tcp_reset_reaches_the_sender(kernel):
    """REJECT's RST really leaves the firewall (the harness must not swallow it)."""
    kernel.load_nft("table inet f {\n chain i {\n type filter hook input priority 0;\n"
                    " tcp dport 113 reject with tcp reset\n }\n}\n")
    case = cases_from_json([{"name": "ident", "probe": {"dir": "in", "dport": 113}}])[0]
    kernel._drain()
    assert kernel.run_case(case).verdict == "REJECT"
    frames = kernel.last_frames + [d for d, a in _recv_all(kernel._peer_sock["eth0"]) if a[2] != 4]
    assert any(wire.is_rejection_of(case.probe, f[14:]) for f in frames)


def _recv_all(sock):
    from fwc.testing.kernel import _recv_all as recv
    return list(recv(sock))


STATE_CASES = cases_from_json([
    {"name": "bare-rst", "probe": {"dir": "in", "flags": "R", "dport": 22}},
    {"name": "port-unreachable", "setup": DNS_SETUP_V4,
     "probe": {"dir": "in", "src": "198.51.100.53", "icmp_type": 3, "icmp_code": 3, "quote": 0}},
    {"name": "port-unreachable6", "setup": DNS_SETUP_V6,
     "probe": {"dir": "in", "src": "2001:db8:a::53", "icmp_type": 1, "icmp_code": 4, "quote": 0}},
    {"name": "handshake", "setup": [
        {"dir": "out", "dport": 443, "flags": "S"},
        {"dir": "in", "sport": 443, "dport": 40000, "flags": "SA"},
        {"dir": "out", "dport": 443, "flags": "A"}],
     "probe": {"dir": "in", "sport": 443, "dport": 40000, "flags": "PA", "payload": "hello"}},
    {"name": "mid-stream-ack", "probe": {"dir": "in", "flags": "A", "dport": 22}},
])


def test_conntrack_states(kernel_module):
    kernel_module.load_nft("")
    results = by_name(kernel_module.run_cases(STATE_CASES))
    assert results["bare-rst"].ct_state == "INVALID"
    assert results["port-unreachable"].ct_state == "RELATED"
    assert results["port-unreachable6"].ct_state == "RELATED"
    assert results["handshake"].setup_verdicts == ("ACCEPT",) * 3
    assert results["handshake"].ct_state == "ESTABLISHED"
    assert results["mid-stream-ack"].ct_state == "NEW"  # tcp_loose picks it up


def test_strict_tcp_marks_mid_stream_ack_invalid():
    kernel_or_skip()
    with KernelHarness(tcp_loose=False) as h:
        result = h.run_case(STATE_CASES[-1])
    assert result.ct_state == "INVALID"


def test_notrack_gives_untracked(kernel_module):
    raw = restore_text(["-A PREROUTING -p tcp --dport 22 -j CT --notrack"], table="raw",
                       policies=()).replace("*raw\n", "*raw\n:PREROUTING ACCEPT [0:0]\n")
    kernel_module.load_iptables(raw, raw)
    results = by_name(kernel_module.run_cases(QA_CASES))
    assert results["ssh"].ct_state == "UNTRACKED"
    assert results["ssh6"].ct_state == "UNTRACKED"
    assert results["telnet"].ct_state == "NEW"


def test_forward_accept_and_drop(kernel_module):
    rules = ["-A FORWARD -p tcp --dport 80 -j ACCEPT"]
    text = restore_text(rules, ("ACCEPT", "DROP", "ACCEPT"))
    kernel_module.load_iptables(text, text)
    cases = cases_from_json([
        {"name": "http", "probe": {"dir": "fwd", "dport": 80}},
        {"name": "other", "probe": {"dir": "fwd", "dport": 81}},
        {"name": "http6", "probe": {"dir": "fwd", "l3": "ipv6", "dport": 80}},
        {"name": "other6", "probe": {"dir": "fwd", "l3": "ipv6", "dport": 81}},
    ])
    results = by_name(kernel_module.run_cases(cases))
    assert {n: r.verdict for n, r in results.items()} == {
        "http": "ACCEPT", "other": "DROP", "http6": "ACCEPT", "other6": "DROP"}
    assert results["http"].ct_state == "NEW"


def test_load_errors_carry_the_tool_message(kernel_module):
    with pytest.raises(KernelError, match="syntax error"):
        kernel_module.load_nft("table inet broken { chain c { nonsense } }")
    with pytest.raises(KernelError, match="iptables-restore"):
        kernel_module.load_iptables("*filter\n-A NOCHAIN -j ACCEPT\nCOMMIT\n")


def test_exec_and_nft_list_run_in_the_firewall_namespace(kernel):
    assert "table inet fwc_observe" in kernel.nft_list()
    assert "192.0.2.1/24" in kernel.exec("ip", "-o", "addr", "show", "eth0").stdout


def test_namespaces_are_deleted_on_exit_and_on_exception():
    kernel_or_skip()
    with KernelHarness() as h:
        names = h.namespaces()
        assert all(netns.exists(n) for n in names)
    assert not any(netns.exists(n) for n in names)
    with pytest.raises(RuntimeError, match="boom"):
        with KernelHarness() as h:
            names = h.namespaces()
            raise RuntimeError("boom")
    assert not any(netns.exists(n) for n in names)


def test_namespaces_are_deleted_on_sigterm():
    kernel_or_skip()
    script = textwrap.dedent("""
        import sys, time
        from fwc.testing.kernel import KernelHarness
        with KernelHarness() as h:
            print(" ".join(h.namespaces()), flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        names = proc.stdout.readline().split()
        assert names and all(netns.exists(n) for n in names)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(netns.exists(n) for n in names)


FTP_HELPER_NFT = """
table inet f {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain pre {
        type filter hook prerouting priority 0;
        tcp dport 21 ct helper set "ftp-std"
    }
    chain out {
        type filter hook output priority 0;
        tcp dport 21 ct helper set "ftp-std"
    }
}
"""


def ftp_case(name: str, client_data_before_port: bool) -> dict:
    server = "198.51.100.10"
    setup = [{"dir": "out", "dst": server, "dport": 21, "flags": "S"},
             {"dir": "in", "src": server, "sport": 21, "dport": 40000, "flags": "SA"},
             {"dir": "out", "dst": server, "dport": 21, "flags": "A"},
             {"dir": "in", "src": server, "sport": 21, "dport": 40000, "flags": "PA",
              "payload": "220 ready\\r\\n"}]
    if client_data_before_port:
        setup.append({"dir": "out", "dst": server, "dport": 21, "flags": "PA", "payload": "USER a\\r\\n"})
    setup.append({"dir": "out", "dst": server, "dport": 21, "flags": "PA",
                  "payload": "PORT 192,0,2,1,200,10\\r\\n"})
    return {"name": name, "setup": setup,
            "probe": {"dir": "in", "src": server, "sport": 20, "dport": 51210, "flags": "S"}}


def test_ftp_helper_makes_active_data_connection_related(kernel_module):
    """Payloads and sequence numbers are consistent enough for the FTP helper to parse PORT;
    it ignores the first data segment of each direction, so PORT as first client data is lost."""
    kernel_module.load_nft(FTP_HELPER_NFT)
    results = by_name(kernel_module.run_cases(cases_from_json([
        ftp_case("port-after-user", True), ftp_case("port-first", False)])))
    assert results["port-after-user"].setup_verdicts == ("ACCEPT",) * 6
    assert results["port-after-user"].ct_state == "RELATED"
    assert results["port-first"].ct_state == "NEW"


def test_reject_counts_even_when_output_drops_the_answer(kernel_module):
    """REJECT is judged where netfilter makes the RST/ICMP error, not where it arrives."""
    text = restore_text(["-A INPUT -p tcp --dport 113 -j REJECT --reject-with tcp-reset",
                         "-A INPUT -p udp --dport 514 -j REJECT"], ("ACCEPT", "ACCEPT", "DROP"))
    kernel_module.load_iptables(text)
    cases = cases_from_json([{"name": "ident", "probe": {"dir": "in", "dport": 113}},
                             {"name": "syslog", "probe": {"dir": "in", "proto": "udp", "dport": 514}}])
    assert [r.verdict for r in kernel_module.run_cases(cases)] == ["REJECT", "REJECT"]


def test_unavailable_kernel_skips_locally_but_fails_in_ci(monkeypatch):
    from fwc.testing import kernel as kernel_mod

    monkeypatch.setattr(kernel_mod, "kernel_available", lambda: (False, "no netns here"))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no netns here"):
        kernel_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI"):
        kernel_or_skip()
