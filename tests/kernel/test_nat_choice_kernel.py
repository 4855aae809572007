"""Which address and port NAT picks, as the kernel picks them (nf_nat_core get_unique_tuple):
- from an address range, find_best_ips_proto's jhash of the source and (unless `persistent`)
  the destination; a source that already has a mapping keeps it (find_appropriate_src);
- a port only when it must change, and then from a random offset for a source rewrite or with
  `random`/`fully-random`: the simulator cannot know it and refuses the replies it cannot tell
  apart.
Every case is a connection out of the inside and a reply from outside to one candidate
address; only a reply to the address the kernel picked is ESTABLISHED (and forwarded)."""

from __future__ import annotations

import pytest

from fwc.backends.simulate import simulate
from fwc.errors import Unsupported
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import sim_options

pytestmark = pytest.mark.kernel

FILTER = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i eth1 -o eth0 -j ACCEPT
COMMIT
"""


def _rules(v6: bool, persistent: bool) -> str:
    pool = "2001:db8:f::100-2001:db8:f::107" if v6 else "192.0.2.100-192.0.2.107"
    inside = "2001:db8:b::/64" if v6 else "203.0.113.0/24"
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n"
            f"-A POSTROUTING -o eth0 -s {inside} -p udp -j SNAT --to-source {pool}"
            f"{' --persistent' if persistent else ''}\nCOMMIT\n" + FILTER)


def _cases(v6: bool) -> list[dict]:
    out = []
    far = ["2001:db8:a::10", "2001:db8:a::20"] if v6 else ["198.51.100.10", "198.51.100.20"]
    for n in range(1, 13):
        src = f"2001:db8:b::{n:x}" if v6 else f"203.0.113.{n + 10}"
        go = [{"dir": "fwd", "iif": "eth1", "oif": "eth0", "proto": "udp", "src": src,
               "dst": d, "sport": 5000, "dport": 53} for d in far]
        setup = go if n % 3 == 0 else go[:1]  # every third: the second destination too
        for k in range(8):
            cand = f"2001:db8:f::{0x100 + k:x}" if v6 else f"192.0.2.{100 + k}"
            out.append({"name": f"{src}-{len(setup)}-{cand}", "setup": setup,
                        "probe": {"dir": "in", "iif": "eth0", "proto": "udp",
                                  "src": setup[-1]["dst"], "dst": cand, "sport": 53,
                                  "dport": 5000}})
    return out


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("persistent", [False, True], ids=["hashed", "persistent"])
def test_snat_range_address_is_the_kernels(kernel, v6, persistent):
    text = _rules(v6, persistent)
    fam = "ip6" if v6 else "ip"
    rs = parse_iptables_save(text, "pool.rules", fam)
    cases = cases_from_json(_cases(v6))
    kernel.prepare(cases)
    loader = ("iptables", None, text) if v6 else ("iptables", text)
    kern = kernel_verdicts(loader, cases, kernel)
    sim = simulate(rs, cases, sim_options())
    got = {c.name: (s.verdict, s.ct_state) for c, s in zip(cases, sim)}
    want = {c.name: (k.verdict, k.ct_state) for c, k in zip(cases, kern)}
    assert got == want
    hits = [n for n, v in want.items() if v[1] == "ESTABLISHED"]
    assert len(hits) == 12  # one address of the pool per connection
    assert len({n.rsplit("-", 1)[1] for n in hits}) > 1  # and not always the same one


RANDOM = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -p udp --dport 53 -j MASQUERADE --random-fully
-A POSTROUTING -o eth0 -p udp --dport 54 -j MASQUERADE
COMMIT
""" + FILTER


def test_random_ports_are_unknown_to_the_simulator(kernel):
    go = {"dir": "fwd", "iif": "eth1", "oif": "eth0", "proto": "udp", "src": "203.0.113.5",
          "dst": "198.51.100.10", "sport": 5000, "dport": 53}
    back = {"dir": "in", "iif": "eth0", "proto": "udp", "src": "198.51.100.10",
            "dst": "192.0.2.1", "sport": 53, "dport": 5000}
    cases = cases_from_json([
        {"name": "random-reply-to-the-old-port", "setup": [go], "probe": back},
        {"name": "plain-reply", "setup": [dict(go, dport=54)], "probe": dict(back, sport=54)}])
    kernel.prepare(cases)
    kern = kernel_verdicts(("iptables", RANDOM), cases, kernel)
    # --random-fully moved the port (the old one again only by a 1 in 64512 chance): the
    # reply to the old port is a new connection to the host itself
    assert (kern[0].verdict, kern[0].ct_state) == ("ACCEPT", "NEW")
    assert (kern[1].verdict, kern[1].ct_state) == ("ACCEPT", "ESTABLISHED")
    rs = parse_iptables_save(RANDOM, "random.rules")
    with pytest.raises(Unsupported, match="at random from 1024-65535"):
        simulate(rs, cases[:1], sim_options())
    (plain,) = simulate(rs, cases[1:], sim_options())
    assert (plain.verdict, plain.ct_state) == ("ACCEPT", "ESTABLISHED")
