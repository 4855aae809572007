"""nft header fields the simulator reads as the kernel does: `meta pkttype` (as -m pkttype:
skb->pkt_type) and `ip frag-off` (a packet that is no fragment and does not set DF, like the
harness's, reads 0).  The harness sends every frame to the firewall's own MAC address, which
makes its pkt_type host whatever the IP destination; the simulator takes a packet's pkt_type
from its IP destination (a broadcast address came in a broadcast frame), so only unicast
destinations are compared here (tests/test_simulate*.py has the others)."""

from __future__ import annotations

import pytest

from fwc import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends.nft import parse_nft
from fwc.frontends.nft_json import parse_nft_json
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

RULESET = """table inet t {
 chain input {
  type filter hook input priority filter; policy accept;
  jump checks
 }
 chain forward {
  type filter hook forward priority filter; policy accept;
  jump checks
 }
 chain checks {
  ip frag-off & 0x1fff != 0 drop
  udp dport 7 pkttype { broadcast, multicast } drop
  udp dport 8 meta pkttype host drop
  udp dport 9 ip frag-off 0 drop
  udp dport 10 ip frag-off 0x4000 drop
 }
}
"""


def test_pkttype_and_frag_off_agree_with_the_kernel(kernel):
    cases = []
    for dst in ("192.0.2.1", "198.51.100.7"):
        for port in (7, 8, 9, 10, 11):
            d = "in" if dst == "192.0.2.1" else "fwd"
            cases.append({"name": f"{dst}:{port}", "probe": {
                "dir": d, "iif": "eth1", "proto": "udp", "src": "203.0.113.9", "dst": dst,
                "sport": 5000, "dport": port, **({"oif": "eth0"} if d == "fwd" else {})}})
    cases = cases_from_json(cases)
    rs = parse_nft(RULESET, "fields.nft")
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", RULESET), cases, kernel)
    got = simulate(rs, cases, sim_options())
    assert [(c.name, w.verdict) for c, w in zip(cases, want)] == \
        [(c.name, g.verdict) for c, g in zip(cases, got)]
    assert {w.verdict for w in want} == {"ACCEPT", "DROP"}


# On a bitmask nft 1.0.6 reads `!= a,b` as the whole value against the OR (cmp neq), `! a,b`
# and a bare `a,b` / `a | b` as bit tests, `== a,b` as the whole value (cmp eq)
BITMASK = """table ip t {
 chain raw {
  type filter hook prerouting priority raw; policy accept;
  tcp sport 5001 notrack
 }
 chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 1 ct state != invalid,untracked drop
  tcp dport 2 ct state ! invalid,untracked drop
  tcp dport 3 ct state != established | related drop
  tcp dport 4 ct state established | related drop
  tcp dport 5 ct state == new,invalid drop
  tcp dport 6 tcp flags != syn,ack drop
  tcp dport 7 tcp flags ! syn,fin drop
  tcp dport 8 tcp flags syn | fin drop
  tcp dport 9 ct status != confirmed,seen-reply drop
  tcp dport 10 ct state != established drop
  tcp dport 11 ct status & (snat|dnat) == 0 drop
  tcp dport 12 ct state & (established|related) == established drop
  tcp dport 13 ct status & seen-reply == seen-reply drop
  tcp dport 14 ct status & (confirmed|seen-reply) == confirmed|seen-reply drop
 }
}
"""


def test_bitmask_operators_read_as_nft_does(kernel):
    syn = {"dir": "in", "sport": 5000, "flags": "S"}
    raw = []
    for port in range(1, 15):
        p = dict(syn, dport=port)
        back = {"dir": "out", "sport": port, "dport": 5000, "flags": "SA"}
        raw += [{"name": f"{port}-new", "probe": p},
                {"name": f"{port}-invalid", "probe": dict(p, flags="SF")},
                {"name": f"{port}-untracked", "probe": dict(p, sport=5001)},
                {"name": f"{port}-established", "setup": [p, back], "probe": dict(p, flags="A")},
                {"name": f"{port}-reply", "setup": [p], "probe": {"dir": "in", "sport": 5000,
                                                                  "dport": port, "flags": "A"}}]
    cases = cases_from_json(raw)
    rs = parse_nft(BITMASK, "bitmask.nft")
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", BITMASK), cases, kernel)
    got = simulate(rs, cases, sim_options())
    assert [(c.name, w.verdict) for c, w in zip(cases, want)] == \
        [(c.name, g.verdict) for c, g in zip(cases, got)]
    ours = emit_nft(rs)
    again = kernel_verdicts(("nft", ours), cases, kernel)
    assert [w.verdict for w in want] == [a.verdict for a in again]
    assert {w.verdict for w in want} == {"ACCEPT", "DROP"}
    # nft's JSON listing says the same (`!` and `in` for bit tests, `!=` / `==` with `|`)
    kernel.load_nft(BITMASK)
    listed = kernel.exec("nft", "-j", "list", "table", "ip", "t").stdout
    from_json = parse_nft_json(listed, "listed.json")
    assert [r.matches for r in from_json.table("ip", "t").chain("input").rules] == \
        [r.matches for r in rs.table("ip", "t").chain("input").rules]


# Base chains of one priority on one hook: the kernel runs the one registered (declared) last
# first (nf_hook_entries_grow puts a new hook before the first of its priority)
SAME_PRIORITY = """table inet a {
 chain a1 {
  type filter hook input priority filter; policy drop;
  tcp dport 22 accept
 }
}
table inet b {
 chain b1 {
  type filter hook input priority filter; policy accept;
  tcp dport 53 reject
  tcp dport 80 drop
 }
 chain b2 {
  type filter hook input priority filter; policy accept;
  tcp dport 53 accept
  tcp dport 80 reject
 }
}
"""


def test_equal_priority_chains_run_last_declared_first(kernel):
    cases = cases_from_json([{"name": f"p{p}", "probe": {"dir": "in", "dport": p}}
                             for p in (22, 53, 80, 443)])
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", SAME_PRIORITY), cases, kernel)
    got = simulate(parse_nft(SAME_PRIORITY, "prio.nft"), cases, sim_options())
    assert [w.verdict for w in want] == [g.verdict for g in got]
    assert [w.verdict for w in want] == ["ACCEPT", "REJECT", "REJECT", "DROP"]


# nft's `meter NAME { KEY STMT }` is an update of a hidden dynamic set (no timeout, size 65535
# unless given): fwc declares that set and writes `update @NAME { ... }`; with `KEY timeout T`
# the set has the timeout flag and fwc's HashLimit writes T as the set's timeout
METER = """table ip t {
 chain c {
  type filter hook input priority filter; policy accept;
  tcp dport 22 meter ssh { ip saddr limit rate over 3/minute burst 2 packets } drop
  tcp dport 23 meter m2 size 1000 { ip saddr . tcp dport limit rate 1/hour burst 1 packets } accept
  tcp dport 23 drop
  tcp dport 24 meter m3 { ip saddr timeout 1m limit rate over 3/minute burst 2 packets } drop
 }
}
"""


def test_meters_limit_per_key_as_nft_does(kernel):
    def syns(port, n, src="198.51.100.7"):
        return [{"dir": "in", "src": src, "sport": 1000 + k, "dport": port, "flags": "S"}
                for k in range(n)]
    raw = []
    for port in (22, 23, 24):
        for n in (1, 2, 3, 4):
            pk = syns(port, n)
            raw.append({"name": f"{port}-{n}", "setup": pk[:-1], "probe": pk[-1]})
        raw.append({"name": f"{port}-other-src", "setup": syns(port, 3),
                    "probe": syns(port, 1, "198.51.100.8")[0]})
    cases = cases_from_json(raw)
    rs = parse_nft(METER, "meter.nft")
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", METER), cases, kernel)
    again = kernel_verdicts(("nft", emit_nft(rs)), cases, kernel)
    # (the harness keeps a set's elements from case to case, so later cases meet a fuller
    # bucket: the same for both loads, each starting from an empty set)
    assert [(w.verdict, w.setup_verdicts) for w in want] == \
        [(a.verdict, a.setup_verdicts) for a in again]
    assert {w.verdict for w in want} == {"ACCEPT", "DROP"}
    # the simulator takes a packet as within its limit's rate; its first packet per key is
    got = simulate(rs, cases, sim_options())
    firsts = [i for i, c in enumerate(cases) if c.name.endswith("-1")]
    assert [want[i].verdict for i in firsts] == [got[i].verdict for i in firsts] == ["ACCEPT"] * 3
    assert "timeout 60000ms" in emit_nft(rs)


# `jump { ... }` / `goto { ... }` (nft chain bindings): a user chain each, named after the
# chain that holds it; nft 1.0.6's JSON listing holds such a statement as nft text
ANONYMOUS = """table inet t {
 chain c {
  type filter hook input priority filter; policy accept;
  tcp flags syn jump { tcp sport 0 drop; tcp dport 22 accept; }
  udp dport 53 goto {
   udp sport 53 accept
   reject
  }
  tcp dport 23 reject
  tcp dport 22 drop
 }
}
"""


def test_anonymous_chains_mean_what_nft_makes_of_them(kernel):
    cases = cases_from_json(
        [{"name": f"tcp{p}-{f}", "probe": {"dir": "in", "dport": p, "flags": f}}
         for p in (22, 23, 24) for f in ("S", "A")]
        + [{"name": f"udp{s}", "probe": {"dir": "in", "proto": "udp", "sport": s, "dport": 53}}
           for s in (53, 5353)])
    rs = parse_nft(ANONYMOUS, "anon.nft")
    assert [c.name for c in rs.tables[0].chains] == ["c", "c_anon1", "c_anon2"]
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", ANONYMOUS), cases, kernel)
    again = kernel_verdicts(("nft", emit_nft(rs)), cases, kernel)
    got = simulate(rs, cases, sim_options())
    assert [w.verdict for w in want] == [a.verdict for a in again] == [g.verdict for g in got]
    assert {w.verdict for w in want} == {"ACCEPT", "DROP", "REJECT"}
    kernel.load_nft(ANONYMOUS)
    listed = kernel.exec("nft", "-j", "list", "table", "inet", "t").stdout
    assert [(c.name, [(r.matches, r.verdict) for r in c.rules])
            for c in parse_nft_json(listed, "anon.json").tables[0].chains] == \
        [(c.name, [(r.matches, r.verdict) for r in c.rules]) for c in rs.tables[0].chains]


# three readings a second helper round found wrong: a `ct label set` the decision cache must
# replay, `dnat ip to` in inet (an IPv6 packet goes on to the next rule), and `meta pkttype`
# of a packet the host sends (PACKET_HOST whatever its destination)
ROUND2 = {
    "label": ("""table ip m {
 chain pre {
  type filter hook prerouting priority mangle; policy accept;
  ct label set 5
 }
 chain input {
  type filter hook input priority 0; policy drop;
  ct label 5 accept
 }
}
""", [{"name": n, "probe": {"dir": "in", "proto": "udp", "dport": p}}
      for n, p in (("a", 53), ("b", 53), ("c", 54))]),
    "inet-nat": ("""table inet nat {
 chain pre {
  type nat hook prerouting priority dstnat;
  tcp dport 8000 dnat ip to 192.0.2.1:22
  tcp dport 8000 dnat ip6 to [2001:db8:f::1]:22
 }
}
table inet f {
 chain input {
  type filter hook input priority 0; policy drop;
  tcp dport 22 ct status dnat accept
 }
}
""", [{"name": "v6", "probe": {"dir": "in", "src": "2001:db8:a::10", "dst": "2001:db8:f::1",
                               "dport": 8000}},
      {"name": "v4", "probe": {"dir": "in", "src": "198.51.100.10", "dst": "192.0.2.1",
                               "dport": 8000}}]),
    "pkttype-out": ("""table ip f {
 chain output {
  type filter hook output priority 0; policy accept;
  meta pkttype broadcast udp dport 1 drop
  meta pkttype multicast udp dport 2 drop
  meta pkttype host udp dport 3 drop
 }
}
""", [{"name": f"{d}-{p}", "probe": {"dir": "out", "proto": "udp", "dst": d, "dport": p}}
      for d in ("192.0.2.255", "224.0.0.251", "198.51.100.7") for p in (1, 2, 3)]),
}


@pytest.mark.parametrize("name", sorted(ROUND2))
def test_second_round_readings_agree_with_the_kernel(kernel, name):
    text, raw = ROUND2[name]
    cases = cases_from_json(raw)
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", text), cases, kernel)
    got = simulate(parse_nft(text, f"{name}.nft"), cases, sim_options())
    assert [(c.name, w.verdict, w.ct_state) for c, w in zip(cases, want)] == \
        [(c.name, g.verdict, g.ct_state) for c, g in zip(cases, got)]


# Which set statements refresh an element's timeout: fwc reads a per-key limit as hashlimit
# (a bucket forgotten once idle for its timeout) only where the kernel refreshes it
EXPIRY = """table ip t {
 set upd { type ipv4_addr; flags dynamic,timeout; timeout 10s; }
 set added { type ipv4_addr; flags dynamic,timeout; timeout 10s; }
 chain c {
  type filter hook output priority 0;
  meter met { ip daddr timeout 10s limit rate 100/second } counter
  update @upd { ip daddr limit rate 100/second } counter
  add @added { ip daddr limit rate 100/second } counter
 }
}
"""


def test_meter_with_a_timeout_refreshes_as_update_does_and_add_does_not(kernel_ok):
    import json
    import os
    import sys
    import time

    from fwc.testing import netns
    ns = f"fwcexp{os.getpid()}"
    send = ("import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            ".sendto(b'x', ('127.0.0.1', 9))")
    netns.create(ns)
    try:
        netns.run(["ip", "link", "set", "lo", "up"], ns=ns)
        netns.run(["nft", "-f", "-"], ns=ns, input=EXPIRY)
        netns.run([sys.executable, "-c", send], ns=ns)
        time.sleep(2.5)
        netns.run([sys.executable, "-c", send], ns=ns)
        listing = [item for what in (["ruleset"], ["meters"])  # (meters are listed apart)
                   for item in json.loads(netns.run(["nft", "-j", "list", *what],
                                                    ns=ns).stdout)["nftables"]]
    finally:
        netns.delete(ns)
    expires = {}
    for item in listing:
        for key in ("set", "meter"):
            if key in item and item[key].get("elem"):
                expires[item[key]["name"]] = item[key]["elem"][0]["elem"]["expires"]
    # refreshed by the second packet: about 10 s left; `add` kept the first packet's expiry
    assert expires["met"] >= 9 and expires["upd"] >= 9 and expires["added"] <= 8, expires
    rs = parse_nft(EXPIRY.replace("  add @added", "  #"), "expiry.nft")  # read as fwc reads them
    assert [type(m).__name__ for r in rs.table("ip", "t").chain("c").rules for m in r.matches] \
        == ["HashLimit", "HashLimit"]
    with pytest.raises(Exception, match="add keeps an element's first expiry"):
        parse_nft(EXPIRY, "expiry.nft")


METER_COUNT = """table ip t {
 chain c {
  type filter hook input priority filter; policy accept;
  tcp dport 22 ct state new meter sc { ip saddr ct count over 2 } reject with tcp reset
 }
}
"""


def test_a_meter_counting_connections_is_connlimit(kernel):
    """`meter M { KEY ct count over N }` is nft's dynset add (no key timeout): the per-address
    connection count fwc reads `add @S { KEY ct count ... }` as (it was refused as statements
    inside an update). The third SYN from one address is reset, in both loads."""
    rs = parse_nft(METER_COUNT, "mc.nft")
    assert "add @" in emit_nft(rs) and "ct count over 2" in emit_nft(rs)
    syns = [{"dir": "in", "src": "198.51.100.7", "sport": 1000 + k, "dport": 22, "flags": "S"}
            for k in range(3)]
    cases = cases_from_json([{"name": "third", "setup": syns[:2], "probe": syns[2]},
                             {"name": "other", "probe": dict(syns[0], src="198.51.100.8")}])
    kernel.prepare(cases)
    want = kernel_verdicts(("nft", METER_COUNT), cases, kernel)
    again = kernel_verdicts(("nft", emit_nft(rs)), cases, kernel)
    assert [(w.verdict, w.setup_verdicts) for w in want] == \
        [(a.verdict, a.setup_verdicts) for a in again]
    assert [w.verdict for w in want] == ["REJECT", "ACCEPT"]


METER_PORT_KEY = """table ip t {
 chain c {
  type filter hook input priority filter; policy accept;
  meta l4proto udp meter m { ip saddr . udp dport timeout 10s limit rate over 1/minute burst 2 packets } drop
 }
}
"""


def test_a_meter_keyed_on_a_protocols_port_is_a_hashlimit_by_port(kernel):
    """`ip saddr . udp dport` as a per-key limit's key (nft adds `meta l4proto udp` for it):
    hashlimit srcip,dstport in a udp rule. The third packet to one port is over; another port
    has its own bucket. Original, fwc's nft and fwc's iptables decide alike."""
    from fwc.backends.iptables import emit_iptables
    rs = parse_nft(METER_PORT_KEY, "mp.nft")
    ipt = emit_iptables(rs)["ip"]
    assert "-p udp -m hashlimit --hashlimit-above 1/minute" in ipt and "srcip,dstport" in ipt
    pk = [{"dir": "in", "proto": "udp", "src": "198.51.100.7", "sport": 1000 + k, "dport": 53}
          for k in range(3)]
    cases = cases_from_json([{"name": "third", "setup": pk[:2], "probe": pk[2]},
                             {"name": "other-port", "probe": dict(pk[0], dport=54)}])
    kernel.prepare(cases)
    got = [[(r.verdict, r.setup_verdicts) for r in kernel_verdicts(loader, cases, kernel)]
           for loader in (("nft", METER_PORT_KEY), ("nft", emit_nft(rs)), ("iptables", ipt, None))]
    assert got[0] == got[1] == got[2], got
    assert [v for v, _ in got[0]] == ["DROP", "ACCEPT"]
