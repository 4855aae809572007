"""`--ctexpire` / `ct expiration` of an entry not yet confirmed (the first packet of a
connection) in the kernel: nf_ct_expires() subtracts the current jiffies from a timeout that is
still relative, so the reading depends on the uptime (found by the kernel property when it ran
seven minutes after boot: a SYN read 0 s on one run and a few seconds on the next).

The simulator takes the jiffies and HZ of the harness's host (fwc.testing.kernel.sim_options)
and must read what the kernel reads, for iptables and for nft.
"""

from __future__ import annotations

import pytest

from fwc.backends.simulate import SimOptions, Simulator
from fwc.backends.nft import emit_nft
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import kernel_clock, sim_options

pytestmark = pytest.mark.kernel

# each range of remaining lifetime its own verdict, so a reading is pinned to one bucket; the
# first rules let the setup packets through (no PSH, or the handshake's own ports), so only
# the probes (PSH, or ports 22 / 53 / ICMP) are judged by their expiration
HEAD = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -m tcp --tcp-flags PSH NONE -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A FORWARD -p tcp -m tcp --tcp-flags PSH NONE -m multiport --dports 23,24 -j ACCEPT
-A FORWARD -p udp -m length --length 0:99 -j ACCEPT
"""
BUCKETS = {
    "fine": "-A FORWARD -m conntrack --ctexpire 0 -j DROP\n"
            "-A FORWARD -m conntrack --ctexpire 1:100 -j REJECT\n"
            "-A FORWARD -m conntrack --ctexpire 101:4000000000 -j ACCEPT\n",
    "coarse": "-A FORWARD -m conntrack --ctexpire 0 -j DROP\n"
              "-A FORWARD -m conntrack --ctexpire 1:1000 -j REJECT\n"
              "-A FORWARD -m conntrack --ctexpire 1001:4000000000 -j ACCEPT\n",
}


def rules(bucket: str) -> str:
    return HEAD + BUCKETS[bucket] + "-A FORWARD -j DROP\nCOMMIT\n"


RULES = rules("coarse")


def _cases():
    fwd = {"dir": "fwd", "src": "198.51.100.7", "dst": "203.0.113.9", "iif": "eth0",
           "oif": "eth1", "sport": 40000}
    back = {"dir": "fwd", "src": "203.0.113.9", "dst": "198.51.100.7", "iif": "eth1",
            "oif": "eth0", "dport": 40000}
    t = dict(fwd, proto="tcp")
    hs = [dict(t, dport=23, flags="S"), dict(back, proto="tcp", sport=23, flags="SA"),
          dict(t, dport=23, flags="A")]
    pick = [dict(t, dport=24, flags="A")]
    pick_reply = pick + [dict(back, proto="tcp", sport=24, flags="A")]
    udp = [dict(fwd, proto="udp", dport=54), dict(back, proto="udp", sport=54)]
    return cases_from_json([
        # first packets: the entry is not confirmed yet
        {"name": "syn", "probe": dict(t, dport=22, flags="S")},
        {"name": "midstream-ack", "probe": dict(t, dport=22, flags="A")},  # loose pickup
        {"name": "udp", "probe": dict(fwd, proto="udp", dport=53, payload="x" * 100)},
        {"name": "icmp", "probe": {k: v for k, v in dict(fwd, proto="icmp", icmp_type=8).items()
                                   if k != "sport"}},
        # confirmed entries: 5 days once established with nothing unacknowledged, 5 minutes
        # with data in flight or before the pickup saw a reply, 30 s for UDP within 2 s
        {"name": "established", "setup": hs, "probe": dict(t, dport=23, flags="PA")},
        {"name": "established-data", "setup": hs,
         "probe": dict(t, dport=23, flags="PA", payload="x" * 100)},
        {"name": "pickup-no-reply", "setup": pick, "probe": dict(t, dport=24, flags="PA")},
        {"name": "pickup-replied", "setup": pick_reply, "probe": dict(t, dport=24, flags="PA")},
        {"name": "udp-replied", "setup": udp,
         "probe": dict(fwd, proto="udp", dport=54, payload="x" * 100)},
    ])


def _verdicts(opts, bucket="coarse"):
    sim = Simulator(parse_iptables_save(rules(bucket), "ctexpire.rules"), opts)
    return {c.name: sim.run_case(c).verdict for c in _cases()}


def test_unconfirmed_reading_depends_on_jiffies():
    old = _verdicts(SimOptions(jiffies=None))
    young = _verdicts(SimOptions(jiffies=(-300 * 250 + 60 * 250) & 0xFFFFFFFF, hz=250))
    late = _verdicts(SimOptions(jiffies=(430 - 300) * 250, hz=250))  # 430 s after boot
    first = ["syn", "midstream-ack", "udp", "icmp"]
    assert [old[n] for n in first] == ["DROP"] * 4  # up longer than any timeout: 0
    assert [young[n] for n in first] == ["REJECT"] * 4  # 1 minute after boot: 270-540 s
    assert [late[n] for n in first] == ["DROP", "REJECT", "DROP", "DROP"]  # pickup: 300 s
    confirmed = {"established": "ACCEPT", "established-data": "REJECT",
                 "pickup-no-reply": "REJECT", "pickup-replied": "ACCEPT",
                 "udp-replied": "REJECT"}
    assert {n: old[n] for n in confirmed} == confirmed
    fine = _verdicts(SimOptions(jiffies=None), "fine")
    assert fine["udp-replied"] == "REJECT" and fine["established-data"] == "ACCEPT"


@pytest.mark.parametrize("bucket", sorted(BUCKETS))
@pytest.mark.parametrize("backend", ["iptables", "nft"])
def test_expiration_agrees_with_kernel(kernel, backend, bucket):
    assert kernel_clock() is not None, "jiffies/HZ of this kernel could not be read"
    text = rules(bucket)
    rs = parse_iptables_save(text, "ctexpire.rules")
    cases = _cases()
    expected = [Simulator(rs, sim_options()).run_case(c) for c in cases]
    kernel.prepare(cases)
    got = kernel_verdicts((backend, text if backend == "iptables" else emit_nft(rs)), cases,
                          kernel)
    for c, want, have in zip(cases, expected, got):
        assert (have.verdict, have.ct_state, have.setup_verdicts) == \
            (want.verdict, want.ct_state, want.setup_verdicts), c.name
