"""The cost model (`fwc cost`): its traffic and its rule counts."""

from __future__ import annotations

import itertools

from fwc.backends.simulate import Simulator
from fwc.cost import MAX_CANDIDATES, build_traffic, candidate_space, cost
from fwc.frontends.iptables import parse_iptables_save
from fwc.passes import optimize


def save(*rules: str, policy: str = "DROP") -> str:
    return "\n".join(["*filter", f":INPUT {policy} [0:0]", ":FORWARD DROP [0:0]",
                      ":OUTPUT ACCEPT [0:0]", *rules, "COMMIT", ""])


def test_candidate_space_spans_every_port_pair_and_interface_once():
    blocks = [("in", 4, [("a", "b"), ("c", "b")], [None, "eth1"]),
              ("fwd", 6, [("x", "y")], [None]),
              ("out", 4, [], [None])]  # no pair: the block holds nothing
    ports = [("tcp", 22), ("udp", 53), ("tcp", 80)]
    total, candidate = candidate_space(blocks, ports)
    want = [(d, l3, p, s, t, i) for d, l3, pairs, iifs in blocks
            for (p, port), (s, t), i in itertools.product(ports, pairs, iifs)]
    assert total == len(want) == 15
    got = [candidate(i) for i in range(total)]
    assert [(c["dir"], c["l3"], c["proto"], c["src"], c["dst"], c.get("iif")) for c in got] \
        == [w[:5] + (w[5],) for w in want]
    assert [c["dport"] for c in got[:6]] == [22, 22, 22, 22, 53, 53]
    assert len({c["sport"] for c in got}) == total  # each candidate its own connection
    try:
        candidate(total)
    except IndexError:
        pass
    else:
        raise AssertionError("an index past the space must fail")


def test_traffic_of_a_ruleset_with_thousands_of_ports_is_sampled_and_accepted():
    # 3,000 port rules from 40 sources: millions of candidate packets, MAX_CANDIDATES run
    rules = [f"-A INPUT -s 10.{i % 40}.0.1 -p tcp -m tcp --dport {1000 + i} -j ACCEPT"
             for i in range(3000)]
    rs = parse_iptables_save(save("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                                  *rules), "many.v4")
    traffic = build_traffic(rs, seed=1)
    again = build_traffic(rs, seed=1)
    assert traffic.items == again.items  # deterministic for a seed
    assert 0 < traffic.services <= MAX_CANDIDATES
    assert abs(sum(w for _c, w, _k in traffic.items) - 1.0) < 1e-9
    sim = Simulator(rs)
    for case, _w, cls in traffic.items:
        if cls == "new":  # a service is a packet the ruleset accepts as NEW
            sim.reset()
            verdict, state, _ = sim.run_packet(case.probe)
            assert (verdict, state) == ("ACCEPT", "NEW"), case.name


def test_established_packets_cost_the_rules_before_the_established_rule():
    services = [f"-A INPUT -p tcp -m tcp --dport {p} -j ACCEPT" for p in (22, 80, 443)]
    est = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    blocks = [f"-A INPUT -s 203.0.113.{i} -j DROP" for i in range(1, 6)]
    first = parse_iptables_save(save(est, *blocks, *services), "first.v4")
    late = parse_iptables_save(save(*blocks, est, *services), "late.v4")
    traffic = build_traffic(first, mix={"est": 100.0, "new": 0.0, "scan": 0.0})
    assert all(k == "est" for _c, _w, k in traffic.items) and traffic.services >= 3
    # inbound established packets: 1 rule in INPUT, or the 5 drops and then the accept
    assert cost(first, traffic).per_hook["input"] == 0.5 * 1 + 0.5 * 0
    assert cost(late, traffic).per_hook["input"] == 0.5 * 6
    # -O may not move the established rule above the drops (established packets from those
    # sources are dropped), but the five drops become one set lookup: 2 rules
    assert cost(optimize(late), traffic).per_hook["input"] == 0.5 * 2
