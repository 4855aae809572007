"""Simulator throughput: 100,000 packets over 1,000 flows through a generated 1,000-rule ruleset.

Compares the compiled simulator (closures, dport prefilter, per-chain decision cache) with a
naive interpreter written here: same conntrack engine, but every packet walks every rule and
evaluates the IR matches with plain loops and isinstance dispatch, no precomputation.

    .venv/bin/python bench/simulate_bench.py [--packets N] [--flows N] [--rules N]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time

from fwc import ir
from fwc.backends.simulate import SimOptions, Simulator
from fwc.conntrack.skb import Skb, flag_bits
from fwc.conntrack.table import ConntrackTable
from fwc.packet import Packet


def make_ruleset(n_rules: int, seed: int = 1) -> ir.Ruleset:
    """INPUT: `n_rules` rules of mixed shape (port, source prefix, state) then policy drop; the
    established-accept rule sits near the end so most packets cross most rules."""
    rnd = random.Random(seed)
    rules = []
    for i in range(n_rules - 1):
        kind = i % 4
        port = 1000 + rnd.randrange(20000)
        src = ipaddress.ip_network(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24")
        if kind == 0:
            m = (ir.Proto(frozenset({6})), ir.Port("tcp", "dport", (ir.Range(port, port),)),
                 ir.Address("saddr", (src,)))
        elif kind == 1:
            m = (ir.Proto(frozenset({17})), ir.Port("udp", "dport", (ir.Range(port, port + 5),)))
        elif kind == 2:
            m = (ir.Address("saddr", (src,)), ir.CtState(frozenset({"NEW"})))
        else:
            m = (ir.Proto(frozenset({6})), ir.TcpFlags(frozenset({"SYN", "RST"}),
                                                        frozenset({"SYN", "RST"})))
        rules.append(ir.Rule(m, verdict=ir.Drop() if kind == 3 else ir.Accept()))
    rules.append(ir.Rule((ir.CtState(frozenset({"ESTABLISHED", "RELATED"})),), verdict=ir.Accept()))
    rules.insert(n_rules // 2, ir.Rule((ir.Proto(frozenset({6})),
                                        ir.Port("tcp", "dport", (ir.Range(80, 80),))),
                                       verdict=ir.Accept()))
    chain = ir.Chain("INPUT", tuple(rules), ir.iptables_base_hook("filter", "INPUT", "drop"))
    out = ir.Chain("OUTPUT", (), ir.iptables_base_hook("filter", "OUTPUT", "accept"))
    return ir.Ruleset((ir.Table("ip", "filter", (chain, out)),))


def make_trace(n_packets: int, n_flows: int, seed: int = 2) -> list[Packet]:
    """Clients 198.51.100.x connect to the host's port 80: SYN, SYN-ACK, then data both ways."""
    rnd = random.Random(seed)
    host = ipaddress.ip_address("192.0.2.1")
    # every tenth flow goes to a port no rule accepts
    flows = [(ipaddress.ip_address(f"198.51.100.{1 + i % 250}"), 20000 + i, 80 if i % 10 else 8080)
             for i in range(n_flows)]
    stage = [0] * n_flows
    pkts = []
    for _ in range(n_packets):
        f = rnd.randrange(n_flows)
        client, sport, dport = flows[f]
        st = stage[f]
        stage[f] += 1
        if st == 0:
            pkts.append(Packet("in", 4, client, host, 6, sport, dport, frozenset({"SYN"})))
        elif st == 1:
            pkts.append(Packet("out", 4, host, client, 6, dport, sport, frozenset({"SYN", "ACK"}),
                               oif="eth0"))
        elif st % 2 == 0:
            pkts.append(Packet("in", 4, client, host, 6, sport, dport, frozenset({"ACK", "PSH"}),
                               iif="eth0"))
        else:
            pkts.append(Packet("out", 4, host, client, 6, dport, sport, frozenset({"ACK"}),
                               oif="eth0"))
    return pkts


# ----------------------------------------------------------------------------- naive interpreter


def _naive_match(m, p: Skb) -> bool:
    if isinstance(m, ir.Proto):
        return (p.proto in m.protos) != m.negate
    if isinstance(m, ir.Port):
        if p.proto != {"tcp": 6, "udp": 17}[m.proto]:
            return False
        v = p.dport if m.field == "dport" else p.sport
        hit = False
        for r in m.ranges:
            if r.lo <= v <= r.hi:
                hit = True
        return hit != m.negate
    if isinstance(m, ir.Address):
        a = ipaddress.ip_address(p.src if m.field == "saddr" else p.dst)
        hit = False
        for n in m.values:
            if a in n:
                hit = True
        return hit != m.negate
    if isinstance(m, ir.CtState):
        return ((p.ct_state or "INVALID") in m.states) != m.negate
    if isinstance(m, ir.TcpFlags):
        if p.proto != 6:
            return False
        return ((p.flags & flag_bits(m.mask)) == flag_bits(m.comp)) != m.negate
    raise NotImplementedError(type(m).__name__)


def naive_run(rs: ir.Ruleset, packets: list[Packet]) -> list[str]:
    ct = ConntrackTable(True)
    table = rs.tables[0]
    verdicts = []
    for pkt in packets:
        p = Skb(pkt)
        ct.lookup(p, lambda text: None)
        chain = table.chain("INPUT" if p.dir == "in" else "OUTPUT")
        verdict = chain.base.policy.upper()
        for rule in chain.rules:
            if all(_naive_match(m, p) for m in rule.matches):
                verdict = "ACCEPT" if isinstance(rule.verdict, ir.Accept) else "DROP"
                break
        if verdict == "ACCEPT":
            ct.confirm(p, lambda text: None)
        verdicts.append(verdict)
    return verdicts


def compiled_run(rs: ir.Ruleset, packets: list[Packet]) -> list[str]:
    sim = Simulator(rs, SimOptions())
    sim.reset()
    return [sim.run_packet(p)[0] for p in packets]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--naive-packets", type=int, default=20_000,
                    help="the naive interpreter is timed on this prefix of the trace")
    args = ap.parse_args()
    rs = make_ruleset(args.rules)
    packets = make_trace(args.packets, args.flows)

    t0 = time.perf_counter()
    fast = compiled_run(rs, packets)
    t_fast = time.perf_counter() - t0
    n_naive = min(args.naive_packets, len(packets))
    t0 = time.perf_counter()
    slow = naive_run(rs, packets[:n_naive])
    t_slow = time.perf_counter() - t0
    assert fast[:n_naive] == slow, "compiled and naive interpreters disagree"
    pps_fast = len(packets) / t_fast
    pps_slow = n_naive / t_slow
    print(f"ruleset: {args.rules} rules; trace: {len(packets)} packets over {args.flows} flows")
    print(f"verdicts: {fast.count('ACCEPT')} ACCEPT, {fast.count('DROP')} DROP "
          f"(naive agrees on the first {n_naive})")
    print(f"compiled simulator: {pps_fast:,.0f} packets/s ({t_fast:.2f} s)")
    print(f"naive interpreter:  {pps_slow:,.0f} packets/s ({t_slow:.2f} s for {n_naive})")
    print(f"speed-up: {pps_fast / pps_slow:.1f}x")


if __name__ == "__main__":
    main()
