"""iptables -m cluster (xt_cluster) against the kernel: the simulator picks the node the kernel
picks (jhash of the original source address, of the master connection for an expected one),
and fwc's nft form of a mask naming every node (a conntrack entry exists, plus the pkt_type
rewrite as a rule of its own) treats frames as xt_cluster does, the rewrite included."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time

import pytest

from fwc import ir
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.conntrack.jhash import cluster_node
from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from fwc.packet import cases_from_json
from fwc.testing import netns, wire
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options
from tests.corpus import TXLATE, require
from tests.kernel.test_sim_vs_kernel import C4, S4, ftp_cases, raw, restore
from tests.txlate import load_cases

pytestmark = pytest.mark.kernel

SEED = 0xDEADBEEF
CL = "-m cluster --cluster-total-nodes {n} --cluster-local-nodemask {m} --cluster-hash-seed {s}"


def _udp(src, dport=7000, dst=None):
    v6 = ":" in src
    return {"dir": "in", "proto": "udp", "src": src, "sport": 5000, "dport": dport,
            "dst": dst or ("2001:db8:f::1" if v6 else S4), "iif": "eth0"}


def _sources():
    v4 = [str(ipaddress.IPv4Address(0xC6336400 + 3 * i + 1)) for i in range(24)]  # 198.51.100.x
    # (xt_cluster hashes only the first 32 bits of an IPv6 address: vary them, and not)
    v6 = [f"2001:{0x1000 + 37 * i:x}::7" for i in range(16)] + \
        [f"2001:db8:a::{0x100 + 7 * i:x}" for i in range(4)]
    return v4, v6


def test_cluster_node_agrees_with_the_kernel(kernel):
    """A mask naming some nodes: which sources the rule drops depends only on the hash."""
    rule = "-A INPUT -p udp --dport 7000 " + CL.format(n=4, m=5, s=SEED) + " -j DROP"
    neg = "-A INPUT -p udp --dport 7001 -m cluster --cluster-total-nodes 3 ! " \
          "--cluster-local-node 2 --cluster-hash-seed 7 -j DROP"
    v4, v6 = restore([rule, neg]), restore([rule, neg])
    rs = ir.Ruleset(parse_iptables_save(v4, "v4", "ip").tables +
                    parse_iptables_save(v6, "v6", "ip6").tables)
    srcs4, srcs6 = _sources()
    cases = cases_from_json([{"name": f"{p}-{s}", "probe": _udp(s, p)}
                             for s in srcs4 + srcs6 for p in (7000, 7001)])
    sim = Simulator(rs, sim_options())
    want = [sim.run_case(c).verdict for c in cases]
    assert {"DROP", "ACCEPT"} <= set(want[0::2]) and {"DROP", "ACCEPT"} <= set(want[1::2])
    kernel.prepare(cases)
    got = [r.verdict for r in kernel_verdicts(("iptables", v4, v6), cases, kernel)]
    assert got == want, [(c.name, g, w) for c, g, w in zip(cases, got, want) if g != w]


def test_cluster_hashes_the_master_of_an_expected_connection(kernel):
    """FTP active data (server -> client): with the helper the data connection has a master,
    whose original source (the client) is hashed; without it its own source (the server)."""
    seed = next(s for s in range(1000) if cluster_node(4, int(ipaddress.IPv4Address(C4)), s, 2)
                != cluster_node(4, int(ipaddress.IPv4Address(S4)), s, 2))
    out = "-A OUTPUT -p tcp --sport 20 " + CL.format(n=2, m=1, s=seed) + " -j DROP"
    for helper in (True, False):
        v4 = (raw("-A PREROUTING -p tcp --dport 21 -j CT --helper ftp") if helper else "") + \
            restore([out])
        rs = parse_iptables_save(v4, "ftp.rules", "ip")
        cases = cases_from_json([c for c in ftp_cases("c") if c["name"].endswith("-port")])
        (want,) = [Simulator(rs, sim_options()).run_case(c) for c in cases]
        assert want.ct_state == ("RELATED" if helper else "NEW")
        kernel.prepare(cases)
        (got,) = kernel_verdicts(("iptables", v4), cases, kernel)
        assert (got.verdict, got.ct_state) == (want.verdict, want.ct_state), helper


def test_every_node_mask_means_tracked_in_iptables_nft_and_simulator(kernel):
    """A mask naming every node matches the packets with a conntrack entry: untracked and
    invalid ones are left out, negated or not (in mangle PREROUTING, where nft can also do the
    pkt_type rewrite, and in OUTPUT, where it never applies)."""
    rules = ["-A PREROUTING -p udp --dport 7000 " + CL.format(n=3, m=7, s=SEED) + " -j DROP",
             "-A PREROUTING -p udp --dport 7001 -m cluster --cluster-total-nodes 1 ! "
             "--cluster-local-node 1 --cluster-hash-seed 1 -j DROP",
             "-A PREROUTING -p tcp --dport 7002 " + CL.format(n=1, m=1, s=0) + " -j DROP",
             "-A OUTPUT -p udp --dport 7003 " + CL.format(n=2, m=3, s=SEED) + " -j DROP",
             "-A OUTPUT -p udp --dport 7004 -m limit --limit 1/s -m cluster ! "
             "--cluster-local-nodemask 3 --cluster-total-nodes 2 --cluster-hash-seed 1 -j DROP"]
    v4 = raw("-A PREROUTING -p udp --sport 5001 -j CT --notrack",
             "-A OUTPUT -p udp --sport 5001 -j CT --notrack") + \
        "*mangle\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in
                              ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")) + \
        "".join(r + "\n" for r in rules) + "COMMIT\n"
    rs = parse_iptables_save(v4, "v4", "ip")
    probes = [_udp(C4, 7000), dict(_udp(C4, 7000), sport=5001), _udp(C4, 7001),
              dict(_udp(C4, 7001), sport=5001),
              {"dir": "in", "src": C4, "sport": 5000, "dport": 7002, "flags": "S"},
              {"dir": "in", "src": C4, "sport": 5000, "dport": 7002, "flags": "SF"},
              {"dir": "out", "proto": "udp", "src": S4, "sport": 5000, "dst": C4, "dport": 7003},
              {"dir": "out", "proto": "udp", "src": S4, "sport": 5001, "dst": C4, "dport": 7003},
              {"dir": "out", "proto": "udp", "src": S4, "sport": 5000, "dst": C4, "dport": 7004}]
    cases = cases_from_json([{"name": f"p{i}", "probe": p} for i, p in enumerate(probes)])
    sim = Simulator(rs, sim_options())
    want = [(r.verdict, r.ct_state) for r in map(sim.run_case, cases)]
    assert [w[0] for w in want] == ["DROP", "ACCEPT", "ACCEPT", "ACCEPT", "DROP", "ACCEPT",
                                    "DROP", "ACCEPT", "ACCEPT"]
    kernel.prepare(cases)
    for loader in (("iptables", v4), ("nft", emit_nft(rs))):
        got = [(r.verdict, r.ct_state) for r in kernel_verdicts(loader, cases, kernel)]
        assert got == want, loader[0]


# --------------------------------------------------------------------------- pkt_type rewrite

OBSERVER = """table ip obs {
\tchain pre {
\t\ttype filter hook prerouting priority -100; policy accept;
\t\tudp dport 9000-9100 meta pkttype host meta mark 0xffff counter
\t\tudp dport 9000-9100 meta pkttype host meta mark != 0xffff counter
\t\tudp dport 9000-9100 meta pkttype multicast meta mark 0xffff counter
\t\tudp dport 9000-9100 meta pkttype multicast meta mark != 0xffff counter
\t}
}
"""
KINDS = ("host+mark", "host", "multicast+mark", "multicast")


def _frames(mac_fw: bytes, mac_tx: bytes) -> list[tuple[str, bytes]]:
    """UDP frames to the firewall: a multicast MAC with its unicast address, the same untracked
    (sport 6000), a multicast MAC and address, and its own MAC."""
    def frame(dst_mac, dst_ip, sport, dport):
        udp = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (9).to_bytes(2, "big") + \
            b"\0\0" + b"x"
        ip = wire.ip_header(4, socket.inet_aton("192.0.2.9"), socket.inet_aton(dst_ip), 17,
                            len(udp)) + udp
        return wire.ether(dst_mac, mac_tx, 0x0800, ip)
    mcast = bytes.fromhex("01005e010203")
    return [("mcast-mac", frame(mcast, "192.0.2.1", 5000, 9000)),
            ("mcast-mac-untracked", frame(mcast, "192.0.2.1", 6000, 9001)),
            ("mcast-ip", frame(mcast, "224.1.2.3", 5000, 9002)),
            ("own-mac", frame(mac_fw, "192.0.2.1", 5000, 9003))]


def _observe(load) -> dict:
    """Each frame sent to a fresh firewall namespace loaded by `load`: what the observer after
    the mangle hook saw ({frame: kind})."""
    tag = f"clk{os.getpid()}"
    fw, tx = tag + "fw", tag + "tx"
    out = {}
    try:
        for n in (fw, tx):
            netns.create(n)
        netns.run(["ip", "-n", fw, "link", "add", "eth1", "type", "veth", "peer", "name", "tx0",
                   "netns", tx])
        netns.run(["ip", "-n", fw, "addr", "add", "192.0.2.1/24", "dev", "eth1"])
        for ns, dev in ((fw, "eth1"), (tx, "tx0")):
            netns.run(["ip", "-n", ns, "link", "set", dev, "up"])
        netns.run(["ip", "-n", fw, "route", "add", "224.0.0.0/4", "dev", "eth1"])
        mac_fw = bytes.fromhex(json.loads(netns.run(
            ["ip", "-n", fw, "-j", "link", "show", "eth1"]).stdout)[0]["address"].replace(":", ""))
        load(fw)
        netns.run(["nft", "-f", "-"], input=OBSERVER, ns=fw)
        with netns.entered(tx):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            s.bind(("tx0", 0))
            frames = _frames(mac_fw, s.getsockname()[4])
            for name, data in frames:
                before = _counts(fw)
                s.send(data)
                time.sleep(0.2)
                after = _counts(fw)
                seen = [k for k, a, b in zip(KINDS, after, before) if a != b]
                out[name] = seen[0] if len(seen) == 1 else tuple(seen)
        finally:
            s.close()
    finally:
        for n in (fw, tx):
            netns.delete(n)
    return out


def _counts(ns: str) -> list[int]:
    doc = json.loads(netns.run(["nft", "-j", "list", "table", "ip", "obs"], ns=ns).stdout)
    return [sum(x["counter"]["packets"] for x in o["rule"]["expr"] if "counter" in x)
            for o in doc["nftables"] if "rule" in o]


RAW_UNTRACK = ["-t", "raw", "-A", "PREROUTING", "-p", "udp", "--sport", "6000", "-j", "CT",
               "--notrack"]


@pytest.mark.parametrize("line", [4, 10])
def test_cluster_vector_with_one_node_same_frames_as_xt_cluster(kernel_ok, line):
    """libxt_cluster.txlate vectors with one node: upstream's `jhash ... mod 1 ... eq 1` never
    matches (mod 1 is always 0); xt_cluster matches every tracked packet and rewrites pkt_type
    multicast to host for a unicast destination, matched or not.  fwc's rules do the same."""
    require(TXLATE)
    (case,) = [c for c in load_cases() if c.id == f"libxt_cluster.txlate:{line}"]

    def xt(ns):
        netns.run(["iptables", *RAW_UNTRACK], ns=ns)
        netns.run(["iptables", *case.args], ns=ns)

    script = "iptables " + " ".join(RAW_UNTRACK) + "\niptables " + " ".join(case.args) + "\n"
    text = emit_nft(parse_iptables_script(script, "cluster.sh"))
    xt_seen = _observe(xt)
    assert xt_seen == {"mcast-mac": "host+mark", "mcast-mac-untracked": "host",
                       "mcast-ip": "multicast+mark", "own-mac": "host+mark"}, xt_seen
    assert _observe(lambda ns: netns.run(["nft", "-f", "-"], input=text, ns=ns)) == xt_seen
